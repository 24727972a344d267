"""Link 9: the host's limits for a server with many long-lived connections.

Facts are read once (``gather_host_facts``); the verdicts are pure (``host_checks``), so the tables in
tests/unit/test_doctor_host.py cover them. sysctls under net.* are per network namespace: read them in
the namespace the service runs in.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass
from pathlib import Path

from natlink.doctor.model import CheckResult, ok, warn

log = logging.getLogger(__name__)

LINK = 9
RFC5382_MIN_IDLE = 7440  # RFC 5382 REQ-5: a NAT must keep an idle established connection ≥ 2 h 4 min
FD_HEADROOM = 64  # files, logs, libraries and listeners besides the connections themselves
PAGE = 4096


@dataclass(frozen=True)
class HostFacts:
    nofile_soft: int
    nofile_hard: int
    port_range: tuple[int, int] | None = None
    tw_reuse: int | None = None
    somaxconn: int | None = None
    keepalive_time: int | None = None
    keepalive_intvl: int | None = None
    keepalive_probes: int | None = None
    rmem_default: int | None = None  # tcp_rmem middle value: the buffer a new connection starts with
    wmem_default: int | None = None
    tcp_mem_max_pages: int | None = None  # tcp_mem third value: the kernel's cap for all TCP buffers
    mem_available: int | None = None  # bytes


def _read_ints(path: Path) -> list[int] | None:
    try:
        return [int(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return None


def _first(values: list[int] | None) -> int | None:
    return values[0] if values else None


def gather_host_facts(proc: Path = Path("/proc")) -> HostFacts:
    """Read rlimits, sysctls and /proc/meminfo (missing files simply leave a fact unknown)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    sys_net = proc / "sys" / "net"
    port_range = _read_ints(sys_net / "ipv4" / "ip_local_port_range")
    rmem = _read_ints(sys_net / "ipv4" / "tcp_rmem")
    wmem = _read_ints(sys_net / "ipv4" / "tcp_wmem")
    tcp_mem = _read_ints(sys_net / "ipv4" / "tcp_mem")
    mem_available = None
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                mem_available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return HostFacts(
        nofile_soft=soft, nofile_hard=hard,
        port_range=(port_range[0], port_range[1]) if port_range and len(port_range) >= 2 else None,
        tw_reuse=_first(_read_ints(sys_net / "ipv4" / "tcp_tw_reuse")),
        somaxconn=_first(_read_ints(sys_net / "core" / "somaxconn")),
        keepalive_time=_first(_read_ints(sys_net / "ipv4" / "tcp_keepalive_time")),
        keepalive_intvl=_first(_read_ints(sys_net / "ipv4" / "tcp_keepalive_intvl")),
        keepalive_probes=_first(_read_ints(sys_net / "ipv4" / "tcp_keepalive_probes")),
        rmem_default=rmem[1] if rmem and len(rmem) >= 2 else None,
        wmem_default=wmem[1] if wmem and len(wmem) >= 2 else None,
        tcp_mem_max_pages=tcp_mem[2] if tcp_mem and len(tcp_mem) >= 3 else None,
        mem_available=mem_available,
    )


def _fmt_limit(n: int) -> str:
    return "unlimited" if n == resource.RLIM_INFINITY or n < 0 else str(n)


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def check_nofile(f: HostFacts, expected: int) -> CheckResult:
    need = expected + FD_HEADROOM
    data = {"soft": f.nofile_soft, "hard": f.nofile_hard, "needed": need}
    soft, hard = _fmt_limit(f.nofile_soft), _fmt_limit(f.nofile_hard)
    unlimited = resource.RLIM_INFINITY
    if f.nofile_soft == unlimited or f.nofile_soft >= need:
        return ok(LINK, "nofile", f"ulimit -n {soft} (hard {hard}) covers {expected} connections "
                                  f"(one file descriptor each, +{FD_HEADROOM} headroom)", data=data)
    if f.nofile_hard == unlimited or f.nofile_hard >= need:
        return warn(LINK, "nofile", f"ulimit -n is {soft} (soft): at most ~{max(f.nofile_soft - FD_HEADROOM, 0)} "
                                    f"connections, {expected} expected; the hard limit {hard} allows more",
                    f"raise the soft limit to {need}: LimitNOFILE={need} in the service's systemd unit, or "
                    f"`ulimit -n {need}` before starting it (a program may also raise its own soft limit)", data=data)
    return warn(LINK, "nofile", f"ulimit -n is {soft} soft / {hard} hard: at most ~{max(f.nofile_hard - FD_HEADROOM, 0)} "
                                f"connections, {expected} expected, and the hard limit stops a program raising it",
                f"raise both limits: LimitNOFILE={need} in the systemd unit, or `* hard nofile {need}` and "
                f"`* soft nofile {need}` in /etc/security/limits.conf", data=data)


def check_port_range(f: HostFacts, expected: int) -> CheckResult:
    if f.port_range is None:
        return ok(LINK, "ephemeral-ports", "net.ipv4.ip_local_port_range unknown (not Linux?)")
    low, high = f.port_range
    count = high - low + 1
    data = {"low": low, "high": high, "count": count}
    # Accepted connections reuse the listening port; ephemeral ports only limit connections this host opens
    # (a proxy, a tunnel client) — per destination address and port.
    if count < expected:
        return warn(LINK, "ephemeral-ports", f"ip_local_port_range {low}-{high} gives {count} outgoing ports per "
                                             f"destination, fewer than the {expected} connections expected",
                    "if this server proxies connections onward, widen it: sysctl -w "
                    "net.ipv4.ip_local_port_range=\"1024 65535\" (persist in /etc/sysctl.d/)", data=data)
    return ok(LINK, "ephemeral-ports", f"ip_local_port_range {low}-{high}: {count} outgoing ports per destination "
                                       "(incoming connections all share the listening port)", data=data)


_TW_REUSE = {0: "off", 1: "on for all outgoing connections", 2: "on for loopback only (the default)"}


def check_tw_reuse(f: HostFacts) -> CheckResult:
    if f.tw_reuse is None:
        return ok(LINK, "tcp-tw-reuse", "net.ipv4.tcp_tw_reuse unknown")
    meaning = _TW_REUSE.get(f.tw_reuse, f"value {f.tw_reuse}")
    # Only matters for many short outgoing connections to one destination; never harmful for a server.
    return ok(LINK, "tcp-tw-reuse", f"tcp_tw_reuse = {f.tw_reuse} ({meaning}); matters only for many short "
                                    "outgoing connections", data={"value": f.tw_reuse})


def check_somaxconn(f: HostFacts, expected: int) -> CheckResult:
    if f.somaxconn is None:
        return ok(LINK, "somaxconn", "net.core.somaxconn unknown")
    data = {"value": f.somaxconn}
    wanted = min(expected, 4096)  # 4096 is the modern kernel default; a bigger accept queue rarely helps
    if f.somaxconn < min(wanted, 1024):
        return warn(LINK, "somaxconn", f"somaxconn = {f.somaxconn}: a burst of new connections overflows the "
                                       "accept queue and clients see timeouts",
                    f"sysctl -w net.core.somaxconn={wanted} (and a listen backlog that large in the service)", data=data)
    return ok(LINK, "somaxconn", f"somaxconn = {f.somaxconn} (accept queue limit)", data=data)


def check_memory(f: HostFacts, expected: int) -> CheckResult:
    if f.rmem_default is None or f.wmem_default is None:
        return ok(LINK, "tcp-memory", "TCP buffer sizes unknown")
    per_conn = f.rmem_default + f.wmem_default
    total = per_conn * expected
    data = {"per_connection": per_conn, "expected_total": total, "mem_available": f.mem_available,
            "tcp_mem_max": None if f.tcp_mem_max_pages is None else f.tcp_mem_max_pages * PAGE}
    what = (f"{expected} busy connections can use up to ~{_mib(total)} of socket buffers "
            f"({per_conn // 1024} KiB each: tcp_rmem {f.rmem_default // 1024} KiB + tcp_wmem {f.wmem_default // 1024} KiB)")
    if f.tcp_mem_max_pages is not None and total > f.tcp_mem_max_pages * PAGE:
        return warn(LINK, "tcp-memory", f"{what}, more than the kernel's TCP limit {_mib(f.tcp_mem_max_pages * PAGE)} "
                                        "(tcp_mem): the kernel will shrink buffers and drop data under load",
                    "add memory, or lower per-connection buffers (net.ipv4.tcp_rmem / tcp_wmem middle values)", data=data)
    if f.mem_available is not None and total > f.mem_available // 2:
        return warn(LINK, "tcp-memory", f"{what}, more than half of the {_mib(f.mem_available)} available memory",
                    "add memory or expect fewer busy connections (idle connections use far less)", data=data)
    return ok(LINK, "tcp-memory", what + (f"; {_mib(f.mem_available)} available" if f.mem_available else ""), data=data)


def recommend_keepalive(nat_timeout: float) -> int:
    """A keepalive/heartbeat interval safely below the NAT's idle timeout (seconds, at least 1)."""
    interval = nat_timeout * 0.6  # margin for jitter, a lost probe and the timeout being a bracket
    if interval >= 60:
        return int(interval // 30 * 30)
    if interval >= 10:
        return int(interval // 5 * 5)
    return max(1, int(interval))


def check_keepalive(f: HostFacts, nat_timeout: float | None) -> CheckResult:
    """tcp_keepalive_time vs the NAT idle timeout (measured, or RFC 5382's minimum when unknown)."""
    if f.keepalive_time is None:
        return ok(LINK, "keepalive", "net.ipv4.tcp_keepalive_time unknown")
    t = f.keepalive_time
    data = {"tcp_keepalive_time": t, "tcp_keepalive_intvl": f.keepalive_intvl,
            "tcp_keepalive_probes": f.keepalive_probes, "nat_timeout": nat_timeout}
    if nat_timeout is None:
        data["nat_timeout_assumed"] = RFC5382_MIN_IDLE
        if t < RFC5382_MIN_IDLE:
            return ok(LINK, "keepalive", f"tcp_keepalive_time = {t} s, below the {RFC5382_MIN_IDLE} s idle timeout "
                                         "RFC 5382 requires of NATs; many home routers drop idle connections much "
                                         "sooner — measure yours with `natlink doctor --measure-nat-timeout`", data=data)
        return warn(LINK, "keepalive", f"tcp_keepalive_time = {t} s: longer than even an RFC 5382 NAT keeps an idle "
                                       "connection, so idle connections die silently",
                    f"sysctl -w net.ipv4.tcp_keepalive_time={recommend_keepalive(RFC5382_MIN_IDLE)} and enable "
                    "SO_KEEPALIVE (or application heartbeats) in the service", data=data)
    rec = recommend_keepalive(nat_timeout)
    data["recommended"] = rec
    if t >= nat_timeout:
        return warn(LINK, "keepalive", f"tcp_keepalive_time = {t} s, but your NAT forgets idle connections after "
                                       f"~{nat_timeout:.0f} s: idle connections (remote desktop, SSH) break silently",
                    f"send a keepalive or heartbeat every {rec} s: sysctl -w net.ipv4.tcp_keepalive_time={rec} "
                    "(for sockets with SO_KEEPALIVE), or the application's own keepalive option", data=data)
    return ok(LINK, "keepalive", f"tcp_keepalive_time = {t} s is below the NAT idle timeout (~{nat_timeout:.0f} s)",
              data=data)


def host_checks(f: HostFacts, expected: int, nat_timeout: float | None) -> list[CheckResult]:
    return [check_nofile(f, expected), check_port_range(f, expected), check_tw_reuse(f),
            check_somaxconn(f, expected), check_memory(f, expected), check_keepalive(f, nat_timeout)]
