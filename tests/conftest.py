"""Shared fixtures. Lab tests (`@pytest.mark.lab`) need root and the lab's packages: outside CI they skip
with a one-line reason; under CI=true they fail, so CI can never pass with the lab silently skipped."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
# natlink wraps human output to the terminal (80 columns when unknown, as in a pipe). Tests that read sentences
# out of the output see them unwrapped; the tests of wrapping itself set COLUMNS or use a real terminal (tmux).
os.environ.setdefault("COLUMNS", "400")
REPO = Path(__file__).resolve().parent.parent


@functools.cache
def _lab_problems() -> tuple[str, ...]:
    try:
        from natlink.lab import check_prerequisites
    except Exception as exc:  # the lab package itself is broken or missing
        return (f"natlink.lab cannot be imported: {exc}",)
    return tuple(check_prerequisites())


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("lab") is None:
        return
    problems = _lab_problems()
    if problems:
        reason = "lab unavailable: " + "; ".join(problems)
        if IN_CI:
            pytest.fail(reason + " (CI=true: lab tests must run)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def lab_factory() -> Iterator[Callable[..., Any]]:
    """Start labs with any scenario/options; every lab started is stopped after the test, pass or fail."""
    from natlink.lab import Lab

    started: list[Any] = []

    def make(scenario: str = "normal", **kwargs: Any) -> Any:
        lab = Lab(scenario=scenario, **kwargs)
        started.append(lab)
        lab.start()
        return lab

    yield make
    for lab in reversed(started):
        lab.stop()


@pytest.fixture
def lab(lab_factory: Callable[..., Any]) -> Any:
    """A fresh lab in the normal scenario (public-looking WAN address, miniupnpd, knot)."""
    return lab_factory("normal")


@pytest.fixture(autouse=True)
def _no_system_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk only to loopback and the lab: a DDNS live-record lookup that falls back to the machine's
    resolver (NS discovery for a name without `nameserver`) fails the test instead of leaving the machine."""
    import dns.resolver

    real = dns.resolver.Resolver.__init__

    def guarded(self: Any, filename: str = "/etc/resolv.conf", configure: bool = True) -> None:
        if configure:
            raise RuntimeError("a test asked the system DNS resolver; give the entry nameserver = ... or "
                               "verify = false")
        real(self, filename, configure=False)

    monkeypatch.setattr(dns.resolver.Resolver, "__init__", guarded)
