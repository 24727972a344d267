"""`natlink reflector --listen` rejects a bad port with one line naming the range (nothing is bound)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("listen", "words"), [
    ("127.0.0.1:99999", "port 99999 is out of range (1-65535)"),
    ("[::1]:70000", "port 70000 is out of range (1-65535)"),
    ("127.0.0.1", "is not ADDR:PORT"),
])
def test_listen_errors(listen: str, words: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "natlink", "reflector", "--listen", listen],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert words in proc.stderr and "Traceback" not in proc.stderr
