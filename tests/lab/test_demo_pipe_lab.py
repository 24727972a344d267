"""`natlink demo | head` and `natlink --json demo | head`: the reader going away ends the demo quietly
(exit 0 or 141, no traceback) and the sandbox is still torn down completely."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from natlink.lab.netns import list_netns
from natlink.lab.registry import REGISTRY_ROOT, ns_name, read_record, tag_of_ns

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def demo_into_pipe(*args: str, read_lines: int) -> tuple[int, list[str], str, int]:
    proc = subprocess.Popen([sys.executable, "-m", "natlink", *args, "demo"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "80"})
    assert proc.stdout is not None and proc.stderr is not None
    lines = [proc.stdout.readline() for _ in range(read_lines)]
    proc.stdout.close()
    err = proc.stderr.read()
    return proc.wait(timeout=120), lines, err, proc.pid


def assert_torn_down(tag: str) -> None:
    assert [n for n in list_netns() if n.startswith(ns_name(tag, ""))] == []
    assert not os.path.exists(os.path.join(REGISTRY_ROOT, tag))


def test_demo_into_head_stops_and_tears_down() -> None:
    code, lines, err, _ = demo_into_pipe(read_lines=2)
    assert code in (0, 141), err
    assert "Traceback" not in err and "Error" not in err, err
    tag = re.search(r"lab ([0-9a-f]{6})", "".join(lines))
    assert tag, lines
    assert_torn_down(tag.group(1))


def test_json_demo_into_a_closed_pipe_ends_quietly() -> None:
    before = set(list_netns())
    code, _, err, pid = demo_into_pipe("--json", read_lines=0)
    assert code in (0, 141), err
    assert "Traceback" not in err and "Error" not in err, err
    # Other labs (another test run, another engineer's) may come and go meanwhile: only a namespace left without
    # a record, or one whose record names this demo's process, would be this demo's leftover.
    left = []
    for name in set(list_netns()) - before:
        tag = tag_of_ns(name)
        if tag is None:
            continue
        record = read_record(tag)
        if record is None or record.pid == pid:
            left.append(name)
    assert left == []
