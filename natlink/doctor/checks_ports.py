"""Link 5 (each mapped service listens: a local connect) and link 6 (external ports ISPs commonly block)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from natlink.config import MappingCfg
from natlink.doctor.model import CheckResult, fail, ok, skipped, warn
from natlink.isp_ports import ISP_BLOCKED, suggest_port

SERVICE_LINK = 5
BLOCKED_LINK = 6

def blocked_port_checks(mappings: tuple[MappingCfg, ...]) -> list[CheckResult]:
    """PURE: a warning per mapping whose external port is on the common ISP block lists."""
    results = []
    for m in mappings:
        what = ISP_BLOCKED.get(m.external_port)
        if what is None:
            continue
        alt = suggest_port(m.external_port)
        results.append(warn(
            BLOCKED_LINK, "isp-blocked", f"{m.name}: external port {m.external_port} ({what}) is blocked inbound by many ISPs",
            f"use a high external port: external_port = {alt}, internal_port = {m.internal_port} "
            f"(clients then connect to port {alt})", subject=m.name, cause="isp-blocked",
            data={"external_port": m.external_port, "suggested": alt}))
    if not mappings:
        return [skipped(BLOCKED_LINK, "isp-blocked", "no [[mapping]] configured", "add a [[mapping]] to the config", cause="not-configured")]
    if not results:
        ports = ", ".join(str(m.external_port) for m in mappings)
        results.append(ok(BLOCKED_LINK, "isp-blocked", f"external ports {ports} are not on common ISP block lists"))
    return results


def _connect(host: str, port: int, timeout: float) -> str | None:
    """None when something accepts the connection; else "refused", "timeout" or the error text."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return exc.strerror or str(exc)


def _udp_bound(port: int, proc: Path = Path("/proc")) -> bool:
    for name in ("udp", "udp6"):
        try:
            lines = (proc / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1]
            if int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def service_check(m: MappingCfg, lan_ip: str, timeout: float = 1.0) -> CheckResult:
    """A local connect to the mapping's internal address and port (UDP: a bound socket on this host)."""
    started = time.monotonic()
    host = m.internal_ip or lan_ip
    data = {"host": host, "port": m.internal_port, "protocol": m.protocol}
    if m.protocol == "udp":
        if _udp_bound(m.internal_port):
            return ok(SERVICE_LINK, "service", f"{m.name}: a UDP socket is bound to port {m.internal_port}",
                      subject=m.name, data=data, elapsed=time.monotonic() - started)
        return fail(SERVICE_LINK, "service", f"{m.name}: nothing on this host is bound to UDP port {m.internal_port}",
                    f"start the service on UDP port {m.internal_port}", subject=m.name, cause="not-listening",
                    data=data, elapsed=time.monotonic() - started)
    if not host:
        return skipped(SERVICE_LINK, "service", f"{m.name}: no LAN address to connect to", "fix link 1",
                       subject=m.name, data=data)
    problem = _connect(host, m.internal_port, timeout)
    elapsed = time.monotonic() - started
    if problem is None:
        return ok(SERVICE_LINK, "service", f"{m.name}: {host}:{m.internal_port} accepts connections "
                                           f"({elapsed * 1000:.0f} ms)", subject=m.name, data=data, elapsed=elapsed)
    data["error"] = problem
    if problem == "refused" and host != "127.0.0.1" and _connect("127.0.0.1", m.internal_port, timeout) is None:
        return fail(SERVICE_LINK, "service", f"{m.name}: the service on port {m.internal_port} listens on 127.0.0.1 "
                                             f"only, so {host}:{m.internal_port} refuses connections",
                    f"make the service listen on {host} or 0.0.0.0 (port {m.internal_port})", subject=m.name,
                    cause="loopback-only", data=data, elapsed=elapsed)
    if problem == "refused":
        return fail(SERVICE_LINK, "service", f"{m.name}: nothing listens on {host}:{m.internal_port} (connection refused)",
                    f"start the service on port {m.internal_port} (or fix internal_port of mapping {m.name!r})",
                    subject=m.name, cause="not-listening", data=data, elapsed=elapsed)
    return fail(SERVICE_LINK, "service", f"{m.name}: connecting to {host}:{m.internal_port} failed: {problem}",
                f"check that {host} is up and that its firewall lets port {m.internal_port} in",
                subject=m.name, cause=problem if problem == "timeout" else "error", data=data, elapsed=elapsed)


def service_checks(mappings: tuple[MappingCfg, ...], lan_ip: str, timeout: float = 1.0) -> list[CheckResult]:
    if not mappings:
        return [skipped(SERVICE_LINK, "service", "no [[mapping]] configured", "add a [[mapping]] to the config", cause="not-configured")]
    return [service_check(m, lan_ip, timeout) for m in mappings]
