"""Prometheus text exposition (format 0.0.4) on service.metrics = "ADDR:PORT"; off by default."""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from natlink.errors import NatlinkError
from natlink.hostport import parse_target

log = logging.getLogger(__name__)


@dataclass
class LastOutcomes:
    """What the jobs found on their last run, per subject (the gauges beside the job records)."""

    mappings_present: int | None = None
    probes: dict[str, bool] = field(default_factory=dict)  # probe name -> reachable
    ddns: dict[str, bool] = field(default_factory=dict)  # entry -> last outcome ok
    public_ip_verdict: str | None = None


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    """Exact: integers as integers, floats by repr (`%g` printed 1.79618e+09, up to ~1.4 h off a timestamp)."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return repr(float(value))


def render(health: dict[str, Any], outcomes: LastOutcomes) -> str:
    """PURE: the metrics page from a Health.snapshot() and the LastOutcomes."""
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{lab}}} {_num(value)}" if lab else f"{name} {_num(value)}")

    jobs: dict[str, dict[str, Any]] = health.get("jobs", {})
    metric("natlink_up", "gauge", "1 while the service runs", [({}, 1)])
    metric("natlink_job_runs_total", "counter", "job runs by outcome",
           [({"job": j, "outcome": o}, n) for j, rec in jobs.items() for o, n in sorted(rec.get("outcomes", {}).items())])
    metric("natlink_job_consecutive_failures", "gauge", "consecutive failed runs of a job",
           [({"job": j}, rec.get("failures", 0)) for j, rec in jobs.items()])
    metric("natlink_job_last_success_timestamp_seconds", "gauge", "when a job last succeeded (unix time)",
           [({"job": j}, rec["last_success"]) for j, rec in jobs.items() if rec.get("last_success")])
    counters: dict[str, int] = health.get("counters", {})
    metric("natlink_public_ip_changes_total", "counter", "router external address changes seen",
           [({}, counters.get("public_ip_changes", 0))])
    metric("natlink_events_total", "counter", "router/host events received",
           [({"kind": k.removeprefix("event:")}, v) for k, v in counters.items() if k.startswith("event:")])
    metric("natlink_alerts_total", "counter", "alerts delivered", [({}, counters.get("alerts", 0))])
    metric("natlink_ddns_requests_total", "counter", "requests sent to DDNS providers",
           [({}, counters.get("ddns_requests", 0))])
    if outcomes.mappings_present is not None:
        metric("natlink_mappings", "gauge", "natlink-owned mappings present on the router",
               [({}, outcomes.mappings_present)])
    metric("natlink_probe_reachable", "gauge", "1 when the last probe reached the service from outside",
           [({"probe": n}, 1 if ok else 0) for n, ok in sorted(outcomes.probes.items())])
    metric("natlink_ddns_ok", "gauge", "1 when the DDNS entry's last outcome was good",
           [({"entry": n}, 1 if ok else 0) for n, ok in sorted(outcomes.ddns.items())])
    if outcomes.public_ip_verdict:
        metric("natlink_public_ip_verdict", "gauge", "the router's situation (public, cgnat, double-nat, unknown)",
               [({"verdict": outcomes.public_ip_verdict}, 1)])
    return "\n".join(out) + "\n"


class _Server(ThreadingHTTPServer):
    """No reverse DNS at bind: HTTPServer.server_bind asks getfqdn(host), which stalls for seconds on a host
    whose resolver cannot answer for its own address (seen: 6 s without /etc/hosts)."""

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """GET /metrics (any path) -> render(); a daemon thread, closed with stop()."""

    def __init__(self, listen: str, page: Callable[[], str]) -> None:
        address = parse_target(listen, any_port=True)  # port 0 (any free port) is for tests
        if address is None:
            raise NatlinkError(f"service.metrics {listen!r} is not ADDR:PORT", "e.g. \"127.0.0.1:9877\"", exit_code=2)
        self.address = address
        self._page = page
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "MetricsServer":
        page = self._page

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                try:
                    body = page().encode()
                    status = 200
                except Exception as exc:  # a metrics bug must not take the service down
                    body, status = f"# error: {type(exc).__name__}\n".encode(), 500
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # scrapes are not worth a log line
                pass

        host, port = self.address
        try:
            self._server = (_Server6 if ":" in host else _Server)((host, port), Handler)
        except OSError as exc:
            raise NatlinkError(f"cannot listen for metrics on {host}:{port}: {exc.strerror or exc}",
                               "pick a free port in service.metrics or remove it") from None
        self._server.daemon_threads = True
        # shutdown() waits up to one poll interval; keep it small so SIGTERM stops the service well within 2 s.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                         name="natlink-metrics", daemon=True).start()
        log.info("metrics on http://%s:%s/metrics", host, self._server.server_address[1])
        return self

    @property
    def port(self) -> int | None:
        return self._server.server_address[1] if self._server else None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
