"""Waiting in tests for a condition another thread brings about: polled until it holds, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, every: float = 0.01) -> bool:
    """True as soon as ``predicate()`` holds; False when it still does not after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True
