"""Links shown as they finish: the checks run concurrently, but a person reads the chain in order, so each
link is handed on once it and every link before it are complete."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from natlink.doctor.model import LINKS, CheckResult


class LinkStream:
    """Collects results from the doctor's threads; calls ``emit(link, results)`` in link order, each link as
    soon as it and all earlier links are complete (one lock: lines never interleave)."""

    def __init__(self, emit: Callable[[int, list[CheckResult]], None]) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._results: dict[int, list[CheckResult]] = {n: [] for n in LINKS}
        self._complete: set[int] = set()
        self._next = min(LINKS)

    def add(self, results: Iterable[CheckResult], complete: Iterable[int] = ()) -> None:
        with self._lock:
            for r in results:
                self._results[r.link].append(r)
            self._complete.update(complete)
            while self._next in self._complete:
                self._emit(self._next, self._results[self._next])
                self._next += 1

    def finish(self) -> None:
        """Whatever was not marked complete (a check that raised) is shown now, in order."""
        self.add((), LINKS)
