"""The demo runs the tools by the path its prerequisite check found: with /usr/sbin missing from PATH (Debian's
`su` without `-`) it still works instead of failing later with "exec of nft failed"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def test_demo_works_without_sbin_on_path() -> None:
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if "sbin" not in p)
    path = os.pathsep.join([os.path.dirname(sys.executable), path or "/usr/bin:/bin"])
    proc = subprocess.run([sys.executable, "-m", "natlink", "demo"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PATH": path})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exec of" not in proc.stdout + proc.stderr and "Error" not in proc.stderr
