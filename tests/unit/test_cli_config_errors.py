"""Config errors as a user meets them: every problem of a file in one run (unknown keys first, a typo never
reported as the wrong problem), a BOM accepted, files that cannot be a config refused in one line, values cut
short in messages, and a name rule that says what is allowed. Through the real CLI where the output matters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from natlink.config import MAX_PROBLEMS, parse_config, read_config_text
from natlink.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def problems(text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("/x/c.toml"))
    return err.value.problems


def natlink(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "natlink", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=30)


def test_a_typo_is_reported_as_a_typo_not_as_a_missing_key() -> None:
    found = problems('[[mapping]]\nname = "rdp"\nexternal_prot = 3390\n')
    assert found == ("c.toml:3: mapping[0].external_prot: unknown key (did you mean 'external_port'?)",)


def test_every_problem_in_one_run_unknown_keys_first() -> None:
    text = ('[router]\nlan_ip = "nope"\nleese = "1h"\n\n[[mapping]]\nname = "a"\nexternal_port = 99999\n\n'
            '[[mapping]]\nname = "b"\nexternal_port = 3390\nbogus = 1\n\n[schedule]\nddns = "10s"\n')
    found = problems(text)
    assert found[0] == "c.toml:3: router.leese: unknown key (did you mean 'lease'?)"
    assert found[1].startswith("c.toml:12: mapping[1].bogus: unknown key")
    assert set(found[2:]) == {
        "c.toml:2: router.lan_ip: 'nope' is not an IP address (e.g. \"10.0.1.201\" or \"auto\")",
        "c.toml:7: mapping[0].external_port: 99999 is not a port (1-65535)",
        "c.toml:15: schedule.ddns: 10 s is too often; providers ban clients that poll that fast (use at least \"30s\")",
    }


def test_a_probe_of_a_broken_mapping_is_not_blamed_twice() -> None:
    found = problems('[[mapping]]\nname = "rdp"\nexternal_port = 0\n\n[[probe]]\nmapping = "rdp"\n'
                     'via = "hairpin"\n')
    assert len(found) == 1 and "mapping[0].external_port" in found[0]


def test_problems_stop_at_the_limit() -> None:
    text = "".join(f'[[mapping]]\nname = "m{i}"\nexternal_port = 0\n' for i in range(MAX_PROBLEMS + 10))
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("c.toml"))
    assert len(err.value.problems) == MAX_PROBLEMS and "stopped reading" in err.value.message


@pytest.mark.parametrize("name,says", [
    ("zürich", "contains 'ü'; use only ASCII letters a-z A-Z, digits 0-9, '-', '_' and '.' (e.g. 'zuerich')"),
    ("my server", "contains ' '; use only ASCII letters"),
    ("-x", "must start with a letter or digit"),
    ("a" * 64, "is 64 characters long; at most 63"),
])
def test_the_name_rule_says_what_is_allowed(name: str, says: str) -> None:
    [found] = problems(f'[[mapping]]\nname = "{name}"\nexternal_port = 3390\n')
    assert says in found


def test_long_values_are_cut_short_in_messages() -> None:
    [found] = problems(f'[router]\nlan_ip = "{"x" * 100_000}"\n')
    assert len(found) < 200 and "…" in found


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'[[mapping]]\nname = "rdp"\nexternal_port = 3390\n')
    assert parse_config(read_config_text(path), path).mappings[0].external_port == 3390


@pytest.mark.parametrize("make,says", [
    (lambda d: d, "is a directory, not a file"),
    (lambda d: Path("/dev/zero"), "is a device, not a file"),
    (lambda d: (os.mkfifo(d / "fifo"), d / "fifo")[1], "is a pipe, not a file"),
    (lambda d: ((d / "big").write_bytes(b"#" * (1 << 20 | 1)), d / "big")[1], "a config is at most 1 MiB"),
    (lambda d: ((d / "latin1").write_bytes(b'name = "z\xfcrich"\n'), d / "latin1")[1], "is not UTF-8 text"),
])
def test_files_that_cannot_be_a_config_are_refused_in_one_line(tmp_path: Path, make, says: str) -> None:
    r = natlink("-c", str(make(tmp_path)), "check-config")
    assert r.returncode == 2
    [line] = r.stderr.splitlines()
    assert says in line and line.startswith("natlink: config file ")


def test_cli_lists_every_problem_and_json_carries_them(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[mapping]]\nname = "rdp"\nexternal_prot = 3390\n\n[router]\nlease = "9d"\n')
    r = natlink("-c", str(path), "check-config")
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert lines[0] == "natlink: 2 problems in the config:"
    assert lines[1] == "  c.toml:3: mapping[0].external_prot: unknown key (did you mean 'external_port'?)"
    assert lines[2].startswith("  c.toml:6: router.lease:")
    doc = json.loads(natlink("--json", "-c", str(path), "check-config").stdout)
    assert doc["ok"] is False and len(doc["problems"]) == 2 and doc["problems"][0] == lines[1].strip()
