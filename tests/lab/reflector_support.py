"""What the reflector lab tests share beyond fixtures (those: tests/lab/conftest.py)."""

from __future__ import annotations

import time

from natlink.probe.httpcall import CheckerError, call


def wait_healthy(url: str, attempts: int = 200) -> None:
    """Until the reflector at ``url`` answers GET /v1/health: at most ``attempts`` tries, 50 ms apart (the
    test's own requests then show whether it came up)."""
    for _ in range(attempts):
        try:
            call(url, "/v1/health", timeout=1)
            return
        except CheckerError:
            time.sleep(0.05)
