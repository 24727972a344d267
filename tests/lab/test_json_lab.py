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

import service_support
from natlink.cli import build_parser

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "json-schema.json").read_text())

def subcommands() -> list[str]:
    """Every subcommand the parser has: a new one without a case below (and a shape in the schema) fails."""
    return list(build_parser().commands)


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
    full = full_config(lab, tmp_path)
    cases: dict[str, list[tuple[tuple[str, ...], str]]] = {
        "check-config": [(("-c", config, "check-config"), "check-config")],
        "map": [(("-c", config, "map", "--dry-run"), "map"), (("-c", config, "map"), "map")],
        "mappings": [(("-c", config, "mappings"), "mappings")],
        "ip": [(("-c", config, "ip"), "ip")],
        "probe": [(("-c", config, "probe"), "probe")],
        "doctor": [(("-c", config, "doctor", "--no-hairpin"), "doctor")],
        "run": [(("-c", config, "run", "--once", "--no-events"), "run-once")],
        "status": [(("-c", config, "status"), "status")],
        "unmap": [(("-c", config, "unmap"), "unmap")],
        "ddns": [(("-c", full, "ddns"), "ddns")],
        "alert": [(("-c", full, "alert", "--test"), "alert")],
        "init": [(("-c", str(tmp_path / "new.toml"), "init"), "init"),
                 (("init", "--systemd", "--root", str(tmp_path / "root")), "init-systemd"),
                 (("init", "--shell", "--root", str(tmp_path / "root")), "init-shell")],
    }
    separate = {"reload": "test_reload_json_matches_the_schema", "reflector": "test_reflector_json_matches_the_schema",
                "demo": "test_demo_json_matches_the_schema"}
    assert sorted([*cases, *separate]) == sorted(subcommands()), "a subcommand without a --json case here"
    for command, runs in cases.items():
        for args, shape in runs:
            code, doc = run_json(lab, *args)
            validate(doc, "error" if doc.get("ok") is False and "error" in doc else shape)
            assert doc["ok"] is (code == 0), (args, code, doc)
            if command in ("ddns", "alert", "init"):  # a working setup: the command's own shape, not an error
                assert code == 0, (args, doc)


def full_config(lab, tmp_path: Path) -> str:
    """A config with a DDNS entry on the lab's knot and an alert command that works."""
    path = tmp_path / "full.toml"
    path.write_text(f'[router]\ngateway = "{lab.gateway}"\nlan_ip = "{lab.lan_ip}"\ntimeout = 2\n'
                    '[public_ip]\nsources = ["router"]\n' + service_support.rfc2136_entry(lab) +
                    f'[service]\nstate_dir = "{tmp_path / "full-state"}"\n'
                    '[service.alerts]\ncommand = ["/bin/sh", "-c", "cat > /dev/null"]\n')
    return str(path)


def test_reload_json_matches_the_schema(lab, tmp_path: Path) -> None:
    config = service_support.write_config(lab, tmp_path, probe=False, alerts=False, ddns_rfc2136=False)
    service = service_support.start_natlink(lab, config, "--no-events")
    try:
        service_support.wait_for(lambda: (service.state("service") or {}).get("running"), 20, "service running")
        code, doc = run_json(lab, "-c", str(config), "reload")
        assert code == 0, doc
        validate(doc, "reload")
    finally:
        service.stop()


def test_reflector_json_matches_the_schema(lab) -> None:
    """A server: one document once it listens, then it serves until stopped (exit 0 on SIGTERM)."""
    import signal
    import subprocess

    proc = lab.popen("wan", [sys.executable, "-m", "natlink", "--json", "reflector", "--listen",
                             f"{lab.wan_host_ip}:0", "--insecure-http"],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        text = ""
        while True:  # the document is indented over several lines; it is complete when it parses
            line = proc.stdout.readline()
            assert line, f"the reflector ended before its document: {proc.stderr.read()}"
            text += line
            try:
                doc = json.loads(text)
                break
            except ValueError:
                continue
        validate(doc, "reflector")
        assert doc["url"].startswith(f"http://{lab.wan_host_ip}:") and not doc["url"].endswith(":0")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
    assert code == 0


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
