"""Alerts on change or failure: a JSON POST to a webhook and/or a command with the alert as JSON on stdin.
Rate-limited per subject and kind; delivered on a background thread so a slow hook never delays a job."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from urllib.parse import urlparse

from natlink.config import AlertsCfg
from natlink.service.policy import alert_allowed

log = logging.getLogger(__name__)

HOOK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Alert:
    """Names what broke and what to do. Never carries a secret: messages come from redacted results."""

    subject: str  # "ddns:home", "job:mappings", "public-ip", "probe:rdp"
    kind: str  # "fatal" | "failure" | "recovered" | "change"
    message: str
    hint: str = ""
    at: float = field(default_factory=time.time)

    @property
    def key(self) -> str:
        return f"{self.subject}:{self.kind}"

    def to_json(self) -> dict[str, object]:
        return {"source": "natlink", "host": socket.gethostname(), **asdict(self)}

    def line(self) -> str:
        return f"{self.subject}: {self.message}" + (f" — {self.hint}" if self.hint else "")


class Alerter:
    def __init__(self, cfg: AlertsCfg, sent: MutableMapping[str, float],
                 on_sent: Callable[[], None] | None = None) -> None:
        self.cfg = cfg
        self._sent = sent  # shared with Health so the history is persisted
        self._lock = threading.Lock()
        self._on_sent = on_sent

    @property
    def enabled(self) -> bool:
        return bool(self.cfg.webhook or self.cfg.command)

    def raise_(self, alert: Alert) -> bool:
        """Log the alert; deliver it unless rate-limited. Returns True when it was queued for delivery."""
        log.warning("alert: %s", alert.line())
        if not self.enabled:
            return False
        with self._lock:
            if not alert_allowed(self._sent, alert.key, alert.at, self.cfg.min_interval):
                log.info("alert %s not sent again (at most one per %ss)", alert.key, self.cfg.min_interval)
                return False
            self._sent[alert.key] = alert.at
        threading.Thread(target=self.deliver, args=(alert,), name="natlink-alert", daemon=True).start()
        if self._on_sent:
            self._on_sent()
        return True

    def deliver(self, alert: Alert) -> None:
        body = json.dumps(alert.to_json())
        if self.cfg.webhook:
            self._post(self.cfg.webhook, body)
        if self.cfg.command:
            self._command(list(self.cfg.command), body)

    @staticmethod
    def _post(url: str, body: str) -> None:
        import requests  # lazy: most services never alert

        where = urlparse(url).hostname or "webhook"  # the URL itself may hold a token: log only the host
        try:
            resp = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=HOOK_TIMEOUT)
            if resp.status_code >= 300:
                log.error("alert webhook at %s answered HTTP %s — check service.alerts.webhook", where, resp.status_code)
        except requests.RequestException as exc:
            log.error("alert webhook at %s failed: %s — check service.alerts.webhook", where, type(exc).__name__)

    @staticmethod
    def _command(argv: list[str], body: str) -> None:
        try:
            proc = subprocess.run(argv, input=body, text=True, capture_output=True, timeout=HOOK_TIMEOUT)
            if proc.returncode != 0:
                log.error("alert command %s exited %s — check service.alerts.command", argv[0], proc.returncode)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("alert command %s failed: %s — check service.alerts.command", argv[0], exc)
