"""Every command's --json, run as a user runs it on the lab's LAN host (real router), checked against
docs/json-schema.json and the conventions written there: durations in seconds (no *_ms key), null for absent
(no empty hint/fix/error), no data in keys, errors (usage included) as the error document."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "json-schema.json").read_text())


def validate(doc: Any, shape: str) -> None:
    jsonschema.validate(doc, {"$ref": f"#/$defs/{shape}", "$defs": SCHEMA["$defs"]})
    conventions(doc)


def conventions(value: Any, path: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            assert not key.endswith("_ms"), f"{where}: durations are seconds, not milliseconds"
            assert not re.search(r"[:/@ ]", key), f"{where}: data in a key"
            if key in ("hint", "fix", "error", "problem"):
                assert item != "", f"{where}: absent is null, not an empty string"
            conventions(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            conventions(item, f"{path}[{i}]")


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "c.toml"
    path.write_text('[router]\ntimeout = 2\n[public_ip]\nsources = ["router"]\n'
                    '[[mapping]]\nname = "rdp"\nexternal_port = 3390\ninternal_port = 3389\n'
                    '[[probe]]\nmapping = "rdp"\nvia = "hairpin"\n'
                    f'[service]\nstate_dir = "{tmp_path / "state"}"\n')
    return str(path)


def run_json(lab, *args: str) -> tuple[int, Any]:
    r = lab.run("lan", [sys.executable, "-m", "natlink", "--json", *args], check=False, timeout=90)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout)


def test_every_command_json_matches_the_schema(lab, config: str, tmp_path: Path) -> None:
    lab.tcp_service("lan", 3389)
    cases = [
        (("check-config",), "check-config"),
        (("map", "--dry-run"), "map"),
        (("map",), "map"),
        (("mappings",), "mappings"),
        (("ip",), "ip"),
        (("probe",), "probe"),
        (("doctor", "--no-hairpin"), "doctor"),
        (("run", "--once", "--no-events"), "run-once"),
        (("status",), "status"),
        (("unmap",), "unmap"),
    ]
    for args, shape in cases:
        code, doc = run_json(lab, "-c", config, *args)
        validate(doc, "error" if doc.get("ok") is False and "error" in doc else shape)
        assert doc["ok"] is (code == 0), (args, code, doc)
    code, doc = run_json(lab, "-c", str(tmp_path / "new.toml"), "init")
    assert code == 0
    validate(doc, "init")
    code, doc = run_json(lab, "init", "--systemd", "--root", str(tmp_path / "root"))
    assert code == 0
    validate(doc, "init-systemd")


@pytest.mark.parametrize("args", [("map", "--dryrun"), ("bogus",), (), ("-c", "/nonexistent.toml", "map"),
                                  ("-c", "/dev/zero", "check-config"), ("ddns",)])
def test_every_error_is_the_error_document(lab, config: str, args: tuple[str, ...]) -> None:
    args = tuple(config if a == "CFG" else a for a in args)
    if args == ("ddns",):
        args = ("-c", config, "ddns")  # no [[ddns]] entry: a config error
    code, doc = run_json(lab, *args)
    assert code == 2
    validate(doc, "error")


def test_demo_json_matches_the_schema() -> None:
    import subprocess

    r = subprocess.run([sys.executable, "-m", "natlink", "--json", "demo"], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    doc = json.loads(r.stdout)
    validate(doc, "demo")
    assert doc["ok"] is (r.returncode == 0)
