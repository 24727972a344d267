"""A reader that goes away (`natlink ... | head`) ends natlink quietly: exit 0 or 141, nothing on stderr but
what the command itself had to say, never a traceback. Real pipes, real subprocesses of the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = """
[[mapping]]
name = "rdp"
external_port = 3390
internal_port = 3389

[[mapping]]
name = "web"
external_port = 8443
"""


def run_into_closed_pipe(*args: str, read_lines: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the CLI with stdout into a pipe whose reader reads `read_lines` lines and then closes it."""
    proc = subprocess.Popen([sys.executable, "-m", "natlink", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "80"})
    assert proc.stdout is not None and proc.stderr is not None
    for _ in range(read_lines):
        proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return str(path)


@pytest.mark.parametrize("json_mode", [False, True])
@pytest.mark.parametrize("read_lines", [0, 1])
def test_check_config_into_a_closed_pipe_ends_quietly(config: str, json_mode: bool, read_lines: int) -> None:
    proc = run_into_closed_pipe(*(["--json"] if json_mode else []), "-c", config, "check-config",
                                read_lines=read_lines)
    assert proc.returncode in (0, 141), proc.stderr
    assert proc.stderr == ""


def test_a_config_error_into_a_closed_pipe_still_says_it_once_on_stderr(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    proc = run_into_closed_pipe("--json", "-c", str(missing), "check-config")
    assert proc.returncode in (2, 141)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert proc.stderr.count("does not exist") == 1


def test_help_into_a_closed_pipe_ends_quietly() -> None:
    proc = run_into_closed_pipe("--help")
    assert proc.returncode in (0, 141)
    assert proc.stderr == ""


def test_head_in_a_real_shell_pipeline(config: str) -> None:
    """What a user types: the shell's own pipe and `head`; PIPESTATUS gives natlink's exit code."""
    script = f'"{sys.executable}" -m natlink -c "{config}" check-config | head -1; echo "rc=${{PIPESTATUS[0]}}"'
    proc = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    lines = proc.stdout.splitlines()
    assert lines[0].endswith(": OK") and lines[-1] in ("rc=0", "rc=141")
    assert proc.stderr == ""
