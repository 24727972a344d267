"""Output that survives real terminals: help and human output wrap to the terminal's width (a real tmux pane,
no $COLUMNS), 80 columns through a pipe, words and option names never split, numbers kept with their units."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from natlink.output import wrap

REPO = Path(__file__).resolve().parents[2]
CONFIG = "".join(f'[[mapping]]\nname = "service-{i}"\nexternal_port = {3390 + i}\ninternal_port = {3389 + i}\n'
                 f'description = "a description long enough to need wrapping on any terminal of normal width"\n'
                 for i in range(3))


def in_tmux(command: str, width: int) -> list[str]:
    """Run ``command`` in a detached tmux pane of ``width`` columns and return the pane's lines, with the
    lines tmux itself wrapped joined again (-J): a line wider than the pane shows as one long line."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed for the terminal tests (apt-get install tmux)")
    session = f"natlink-test-{uuid.uuid4().hex[:8]}"
    done = f"__done_{session}__"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
    subprocess.run(["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", str(width), "-y", "200",
                    f"cd {REPO} && {command}; echo {done}; sleep 30"], check=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pane = subprocess.run(["tmux", "-L", session, "capture-pane", "-p", "-J", "-S", "-", "-t", session],
                                  capture_output=True, text=True, check=True).stdout
            if done in pane:
                return pane.split(done)[0].rstrip("\n").splitlines()
            time.sleep(0.1)
        pytest.fail(f"tmux command did not finish: {pane}")
    finally:
        subprocess.run(["tmux", "-L", session, "kill-server"], capture_output=True)
    return []


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("width", [80, 60])
def test_help_and_output_fit_a_real_terminal(config: Path, width: int) -> None:
    nl = f"{sys.executable} -m natlink"
    lines = in_tmux(f"{nl} --help; {nl} reflector --help; {nl} doctor --help; {nl} -c {config} check-config "
                    f"2>&1", width)
    assert len(lines) > 40
    assert [ln for ln in lines if len(ln) > width and " " in ln.strip()] == []  # one long path may stand alone
    text = "\n".join(lines)
    for whole in ("--tls-cert", "--measure-nat-timeout", "10 min", "natlink-reflector.service"):
        assert whole in text  # not split at a hyphen or between number and unit


def test_a_pipe_gets_80_columns(config: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-m", "natlink", "-c", str(config), "check-config"], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=30)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and max(map(len, lines)) <= 80 and max(map(len, lines)) > 60


@pytest.mark.parametrize("text,width,expect", [
    ("  [  ok] 1000 busy connections can use up to ~141 MiB of socket buffers", 60,
     ["  [  ok] 1000 busy connections can use up to ~141 MiB of", "         socket buffers"]),
    ("renews in 29 min, TCP 3390 → 10.0.1.201:3389", 22, ["renews in 29 min,", "    TCP 3390 →", "    10.0.1.201:3389"]),
    ("fix: see https://example.net/a-very-long-url-that-cannot-break", 30,
     ["fix: see", "     https://example.net/a-very-long-url-that-cannot-break"]),
])
def test_wrap_keeps_words_urls_and_units_whole(text: str, width: int, expect: list[str]) -> None:
    assert wrap(text, width) == expect


def test_colour_only_on_a_terminal_and_never_with_no_color(config: Path) -> None:
    nl = f"{sys.executable} -m natlink"
    # check-config has no colour; the doctor's config failure is printed in colour on a terminal
    bad = config.parent / "bad.toml"
    bad.write_text('[[mapping]]\nname = "x"\nexternal_port = 0\n')
    coloured = "\n".join(in_tmux(f"{nl} -c {bad} doctor; printf '%s' \"$(tmux capture-pane -p -e | grep -c $'\\e\\[')\"",
                                 80))
    plain = "\n".join(in_tmux(f"NO_COLOR=1 {nl} -c {bad} doctor; printf '%s' \"$(tmux capture-pane -p -e | grep -c "
                              f"$'\\e\\[')\"", 80))
    assert coloured.splitlines()[-1].strip() not in ("", "0") and plain.splitlines()[-1].strip() == "0"
