"""Alerts on change or failure: a JSON POST to a webhook and/or a command with the alert as JSON on stdin, and a
heartbeat URL pinged on success and failure (Healthchecks.io / Uptime Kuma push style).
Rate-limited per event and subject; delivered on a background thread so a slow hook never delays a job."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from natlink.config import AlertsCfg
from natlink.service.policy import alert_allowed

log = logging.getLogger(__name__)

HOOK_TIMEOUT = 10.0
# HttpError.kind -> the word a failed delivery is reported with (never the URL: it may carry a token)
FAILURES = {"connect": "ConnectionError", "timeout": "Timeout", "tls": "TLSError", "protocol": "ProtocolError",
            "too-large": "AnswerTooLarge"}
SCHEMA = 1  # the "schema" field of every alert document; bumped only on an incompatible change

# The event taxonomy: event -> severity. One JSON shape for all (README, "Alerts").
EVENTS: dict[str, str] = {
    "mapping-lost": "error", "mapping-restored": "info",
    "router-lost": "error", "router-restored": "info",
    "public-ip-changed": "info", "ipv6-prefix-changed": "info", "behind-nat": "warning",
    "ddns-failed": "error", "ddns-stopped": "error", "ddns-recovered": "info",
    "reachability-lost": "error", "reachability-restored": "info",
    "service-started": "info", "service-stopped": "info",
    "test": "info",
}


@dataclass(frozen=True)
class Alert:
    """Names what happened and what to do. Never carries a secret: messages come from redacted results."""

    event: str  # a key of EVENTS
    subject: str  # what it is about: "ddns:home", "mapping:rdp", "probe:rdp/ipv4", "public-ip", "router", "service"
    message: str
    hint: str = ""
    at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown alert event {self.event!r}")

    @property
    def key(self) -> str:
        return f"{self.event}:{self.subject}"

    def to_json(self) -> dict[str, object]:
        return {"source": "natlink", "schema": SCHEMA, "event": self.event, "severity": EVENTS[self.event],
                "subject": self.subject, "message": self.message, "hint": self.hint, "host": socket.gethostname(),
                "at": self.at}

    def line(self) -> str:
        return f"{self.event} {self.subject}: {self.message}" + (f" — {self.hint}" if self.hint else "")


class Alerter:
    def __init__(self, cfg: AlertsCfg, sent: MutableMapping[str, float],
                 on_sent: Callable[[], None] | None = None) -> None:
        self.cfg = cfg
        self._sent = sent  # shared with Health so the history is persisted
        self._lock = threading.Lock()
        self._on_sent = on_sent
        self._threads: list[threading.Thread] = []
        self.on_raise: Callable[[Alert], None] | None = None  # the history (natlink/service/history.py)

    @property
    def enabled(self) -> bool:
        return bool(self.cfg.webhook or self.cfg.command)

    def channels(self) -> list[str]:
        """The configured channels, named for people (a URL shows only its host: its path may be a token)."""
        names = []
        if self.cfg.webhook:
            names.append(f"webhook {_host(self.cfg.webhook)}")
        if self.cfg.command:
            names.append(f"command {self.cfg.command[0]}")
        if self.cfg.heartbeat:
            names.append(f"heartbeat {_host(self.cfg.heartbeat)}")
        return names

    def raise_(self, alert: Alert) -> bool:
        """Log the alert; deliver it unless rate-limited. Returns True when it was queued for delivery."""
        log.warning("alert: %s", alert.line())
        if self.on_raise:
            self.on_raise(alert)
        if not self.enabled:
            return False
        with self._lock:
            if not alert_allowed(self._sent, alert.key, alert.at, self.cfg.min_interval):
                log.info("alert %s not sent again (at most one per %ss)", alert.key, self.cfg.min_interval)
                return False
            self._sent[alert.key] = alert.at
            thread = threading.Thread(target=self.deliver, args=(alert,), name="natlink-alert", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        if self._on_sent:
            self._on_sent()
        return True

    def flush(self, timeout: float) -> None:
        """Wait (bounded) for alerts still being delivered: "service-stopped" must leave before the exit."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def deliver(self, alert: Alert) -> dict[str, str | None]:
        """Send to every channel now; -> channel -> None when it worked, else why not (one line each logged)."""
        body = json.dumps(alert.to_json())
        results: dict[str, str | None] = {}
        if self.cfg.webhook:
            results[f"webhook {_host(self.cfg.webhook)}"] = self._post(self.cfg.webhook, body)
        if self.cfg.command:
            results[f"command {self.cfg.command[0]}"] = self._command(list(self.cfg.command), body)
        return results

    @staticmethod
    def _post(url: str, body: str) -> str | None:
        return _post(url, body.encode(), "application/json", "alert webhook", "webhook")

    @staticmethod
    def _command(argv: list[str], body: str) -> str | None:
        try:
            proc = subprocess.run(argv, input=body, text=True, capture_output=True, timeout=HOOK_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            problem = f"failed: {exc}"
        else:
            if proc.returncode == 0:
                return None
            problem = f"exited {proc.returncode}"
        log.error("alert command %s %s — check service.alerts.command", argv[0], problem)
        return problem


def heartbeat_url(url: str, ok: bool) -> str:
    """PURE: the push URL for one ping. Uptime Kuma style (a status= query): status=up|down; otherwise
    Healthchecks.io style: the URL itself on success, URL + "/fail" on failure."""
    parts = urlparse(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "status" for k, _ in query):
        query = [(k, ("up" if ok else "down") if k == "status" else v) for k, v in query]
        return urlunparse(parts._replace(query=urlencode(query)))
    if ok:
        return url
    return urlunparse(parts._replace(path=parts.path.rstrip("/") + "/fail"))


def ping_heartbeat(url: str, ok: bool, text: str) -> str | None:
    """One ping (POST, the text as body: both services show it); -> None when accepted, else why not."""
    return _post(heartbeat_url(url, ok), text.encode()[:10000], "text/plain; charset=utf-8", "heartbeat",
                 "heartbeat")


def _post(url: str, body: bytes, content_type: str, what: str, key: str) -> str | None:
    """POST; -> None on a 2xx answer, else why not (also logged, naming only the URL's host)."""
    from natlink.net.http import HttpClient, HttpError

    try:
        resp = HttpClient(timeout=HOOK_TIMEOUT, max_body=64 * 1024).request(
            "POST", url, body=body, headers={"Content-Type": content_type})
    except HttpError as exc:
        problem = f"failed: {FAILURES[exc.kind]}"
    else:
        if resp.status < 300:
            return None
        problem = f"answered HTTP {resp.status}"
    log.error("%s at %s %s — check service.alerts.%s", what, _host(url), problem, key)
    return problem


def _host(url: str) -> str:
    """Only the host of a URL is ever logged: a webhook or push URL usually carries its token in the path."""
    return urlparse(url).hostname or "?"
