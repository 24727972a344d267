"""Usage as a user meets it: a mistyped command or option gets the close match and the usage of the command it
was typed in; under --json every usage error is one JSON document; each subcommand's help lists only its own
options and its own exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from natlink.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]


def natlink(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "natlink", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=30, env={**os.environ, "COLUMNS": "100"})


@pytest.mark.parametrize("argv,first,usage", [
    (["map", "--dryrun"], "natlink map: unknown option or argument: --dryrun (did you mean --dry-run?)",
     "usage: natlink map [-h] [--dry-run]"),
    (["ip", "--verbos"], "natlink ip: unknown option or argument: --verbos (did you mean --verbose?)",
     "usage: natlink ip"),
    (["mapings"], "natlink: no command 'mapings' (did you mean `natlink mappings`?)", "usage: natlink "),
    (["doctor", "--max", "soon", "--measure-nat-timeout"], "natlink doctor: argument --max:", "usage: natlink doctor"),
])
def test_mistakes_get_a_suggestion_and_the_right_usage(argv, first, usage) -> None:
    r = natlink(*argv)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0].startswith(first)
    assert any(line.startswith(usage) for line in lines[1:3]), lines
    assert "Traceback" not in r.stderr and "choose from" not in r.stderr


@pytest.mark.parametrize("argv", [["map", "--dryrun"], ["bogus"], [], ["reflector"]])
def test_usage_errors_under_json_are_one_document(argv) -> None:
    r = natlink("--json", *argv)
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["error"] and set(doc) >= {"ok", "error", "hint"}


def test_subcommand_help_shows_only_its_options_and_exit_codes() -> None:
    reflector = natlink("reflector", "--help").stdout
    assert "--config" not in reflector and "-c PATH" not in reflector
    assert "stopped by Ctrl-C or SIGTERM" in reflector
    demo = natlink("demo", "--help").stdout
    assert "130" in demo and "interrupted" in demo and "--json" in demo
    helps = {name: natlink(name, "--help").stdout for name in COMMANDS}
    epilogs = {h.split("exit codes:")[1] for h in helps.values()}
    assert len(epilogs) == len(COMMANDS)  # each command its own


def test_top_level_help_lists_every_command_and_the_global_options() -> None:
    text = natlink("--help").stdout
    for name in COMMANDS:
        assert name in text
    for option in ("--config PATH", "--json", "--verbose", "--quiet"):
        assert option in text
