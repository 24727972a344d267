"""A bounded history of what happened to the links (state key "history"): public-address changes, repairs and
failures, for the status page. Written by the service where those events happen (every alert, every mapping
the service had to add or replace); kept for 30 days and at most MAX_ENTRIES entries, oldest dropped first."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from natlink.errors import NatlinkError
from natlink.state import StateStore

log = logging.getLogger(__name__)

KEY = "history"
MAX_AGE = 30 * 86400.0
MAX_ENTRIES = 500  # ~100 KB of JSON at most: the file is rewritten whole on every event


def trimmed(entries: list[Any], now: float, max_age: float = MAX_AGE, max_entries: int = MAX_ENTRIES) -> list[dict[str, Any]]:
    """PURE: well-formed entries younger than max_age, oldest first, at most max_entries (the newest kept)."""
    good = [e for e in entries if isinstance(e, dict) and isinstance(e.get("at"), (int, float))
            and now - e["at"] <= max_age]
    good.sort(key=lambda e: e["at"])
    return good[-max_entries:] if max_entries > 0 else []


class History:
    """Appends events; only the service writes this key, so one in-process lock is enough."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._lock = threading.Lock()

    def add(self, event: str, subject: str, message: str, at: float | None = None) -> None:
        """Never raises: a history that cannot be written must not fail the job that had the event."""
        entry = {"at": time.time() if at is None else at, "event": event, "subject": subject, "message": message}
        with self._lock:
            entries = self._store.load(KEY, None)
            entries = entries.get("entries", []) if isinstance(entries, dict) else []
            try:
                self._store.save(KEY, {"entries": trimmed([*entries, entry], entry["at"])})
            except NatlinkError as exc:
                log.error("history not kept: %s", exc)

    def add_alert(self, alert: Any) -> None:
        if alert.event != "test":
            self.add(alert.event, alert.subject, alert.message, alert.at)


def load(store: StateStore, now: float | None = None) -> list[dict[str, Any]]:
    doc = store.load(KEY, None)
    entries = doc.get("entries", []) if isinstance(doc, dict) else []
    return trimmed(entries if isinstance(entries, list) else [], time.time() if now is None else now)
