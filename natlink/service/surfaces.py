"""What `natlink run` shows outside: the metrics page, the status page (and its "check now" / "update now"),
the heartbeat pings. A mixin of Service (natlink/service/runner.py)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from natlink.config import Config
from natlink.errors import NatlinkError
from natlink.service.alerts import ping_heartbeat
from natlink.service.metrics import MetricsServer, render
from natlink.service.policy import DDNS, MAPPINGS, PROBE, PUBLIC_IP

log = logging.getLogger("natlink.service")


class Surfaces:
    """Service's metrics server, status page and heartbeat."""

    cfg: Any
    health: Any
    watch: Any
    slots: dict[str, Any]
    _metrics: MetricsServer | None
    _web: Any
    _last_ping: float
    _pinged_ok: bool | None

    def metrics_page(self) -> str:
        return render(self.health.snapshot(), self.outcomes)

    def _start_metrics(self) -> None:
        if self.cfg.service.metrics:
            self._metrics = MetricsServer(self.cfg.service.metrics, self.metrics_page).start()

    def _start_web(self) -> None:
        if self.cfg.service.web:
            from natlink.web.server import Actions, WebServer

            self._web = WebServer(self.cfg.service.web, self.cfg.service.web_password, lambda: self.cfg, self.store,
                                  Actions(self.check_now, self.update_now)).start()

    def _reload_web(self, old: Config) -> None:
        """A changed page address restarts the page; a new password value logs everyone out."""
        try:
            if (old.service.web, old.service.web_password) != (self.cfg.service.web, self.cfg.service.web_password):
                if self._web is not None:
                    self._web.stop()
                    self._web = None
                self._start_web()
            elif self._web is not None:
                self._web.reload_password(self.cfg.service.web_password)
        except NatlinkError as exc:
            log.error("%s", exc)

    def check_now(self) -> str:
        """The status page's "check now": one round of every job, at once."""
        self.trigger({MAPPINGS, PUBLIC_IP, DDNS, PROBE}, "check now (status page)")
        return "check started: mappings, public address, DDNS and probes run now"

    def update_now(self, name: str) -> str:
        """The status page's "update now" for one DDNS entry (like `natlink ddns --force NAME`); KeyError if unknown."""
        if name not in {d.name for d in self.cfg.ddns}:
            raise KeyError(name)
        with self._forced_lock:
            self._forced_ddns.add(name)
        self.trigger({DDNS}, f"update now: {name} (status page)")
        return f"update of {name} started: the provider is asked now, even if the address did not change"

    def problems(self) -> list[str]:
        """What is not healthy now, one short phrase each (the heartbeat's failure text)."""
        out = [f"{name}: {self.health.job(name).last_error}" for name in self.slots if self.health.job(name).failures]
        return out + [f"ddns {name} stopped" for name in self.watch.stopped]

    def _ping(self, healthy: bool | None = None, *, wait: bool = False) -> None:
        """One heartbeat ping (service.alerts.heartbeat), success or failure; in the background unless wait."""
        url = self.cfg.service.alerts.heartbeat
        if not url:
            return
        problems = self.problems()
        ok = not problems if healthy is None else healthy and not problems
        text = "natlink: healthy" if ok else "natlink: " + "; ".join(problems or ["a job failed"])
        self._last_ping, self._pinged_ok = time.monotonic(), ok
        if wait:
            ping_heartbeat(url, ok, text)
        else:
            threading.Thread(target=ping_heartbeat, args=(url, ok, text), name="natlink-heartbeat",
                             daemon=True).start()
