"""`natlink demo` wiring: option errors, and the lab never loaded by other commands."""

from __future__ import annotations

import subprocess
import sys

from natlink.cli import main


def test_keep_and_down_together_is_a_usage_error(capsys) -> None:
    assert main(["demo", "--keep", "--down"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("natlink: --keep and --down cannot be combined") and "\n" not in err


def test_demo_help_names_its_options(capsys) -> None:
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--keep" in out and "--down" in out and "--config" in out


def test_normal_commands_never_import_the_lab_or_the_demo() -> None:
    code = ("import sys; from natlink.cli import build_parser; build_parser(); "
            "bad = sorted(m for m in sys.modules if m.startswith(('natlink.lab', 'natlink.demo'))); "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
