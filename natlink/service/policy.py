"""Pure decisions of the service. No I/O, no clocks: callers pass the time in. Table-tested in
tests/unit/test_service_policy.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from natlink.config import Config

# Job names; also the apscheduler job ids and the keys of the health record.
MAPPINGS = "mappings"
PUBLIC_IP = "public_ip"  # the cheap router poll (one local request)
DDNS = "ddns"  # detect the public IP, then push it to the providers (they are only contacted on change)
PROBE = "probe"

# Event kinds the listeners report.
ANNOUNCE = "announce"  # NAT-PMP/PCP multicast from the router: its address changed or it restarted
HOST_ADDRESS = "host-address"  # netlink: an address on this host was added or removed
GENA = "gena"  # UPnP GENA NOTIFY: the router's ExternalIPAddress/ConnectionStatus changed, or its SIDs were lost


@dataclass(frozen=True)
class RouterObservation:
    """What one poll of the router saw. external_ip None: the router did not answer;
    "" : it answered but has no external address (not connected, e.g. miniupnpd behind CGNAT)."""

    external_ip: str | None
    epoch: int | None  # NAT-PMP/PCP seconds since start of epoch; None when the protocol has none
    at: float  # monotonic seconds


def router_rebooted(prev: RouterObservation | None, cur: RouterObservation) -> bool:
    """The epoch did not keep pace with our clock: the router restarted (or re-addressed) and may have lost its
    mappings. The rule itself (RFC 6887 §8.5) is the port-mapping module's, so both always agree."""
    from natlink.portmap.epoch import epoch_lost  # pure, tiny

    if prev is None or prev.epoch is None or cur.epoch is None:
        return False
    return epoch_lost(prev.epoch, prev.at, cur.epoch, cur.at)


def jobs_after_poll(prev: RouterObservation | None, cur: RouterObservation) -> tuple[frozenset[str], str]:
    """Which jobs to run at once after a router poll, and why (for the log). Empty when nothing changed."""
    if prev is None or cur.external_ip is None:
        return frozenset(), ""  # first look (startup runs everything anyway) or router silent: nothing to act on
    if prev.external_ip is None:
        return frozenset({MAPPINGS, DDNS, PROBE}), "router answers again"
    if cur.external_ip != prev.external_ip:
        return (frozenset({DDNS, PROBE, MAPPINGS}),
                f"router external address {prev.external_ip or 'none'} -> {cur.external_ip or 'none'}")
    if router_rebooted(prev, cur):
        return frozenset({MAPPINGS, PROBE}), f"router restarted (epoch {prev.epoch} -> {cur.epoch})"
    return frozenset(), ""


def jobs_for_event(kind: str) -> frozenset[str]:
    """Events are only triggers, never trusted data (anyone on the LAN can send a multicast): they make us
    look at the router now. Mappings are reconciled too, since an announcement also follows a router
    restart and UPnP-only routers give no epoch to detect that from."""
    if kind == HOST_ADDRESS:
        # This host's own address changed: an IPv6 prefix (AAAA, pinholes) or an `interface:` IPv4 source.
        # The router poll cannot see either, so detection (DDNS, local and cheap) runs now too.
        return frozenset({PUBLIC_IP, MAPPINGS, DDNS})
    if kind in (ANNOUNCE, GENA):
        return frozenset({PUBLIC_IP, MAPPINGS})
    return frozenset()


def retry_delay(failures: int, interval: float, base: float = 10.0) -> float:
    """Seconds until the next attempt after `failures` consecutive failures: 10, 20, 40 … never later than
    the job's normal interval. 0 failures: the normal interval."""
    if failures <= 0:
        return float(interval)
    return float(min(interval, base * 2 ** min(failures - 1, 30)))


def mappings_interval(configured: int, leases: Iterable[int]) -> int:
    """How often to reconcile mappings: the configured interval, but at least every third of the shortest
    finite lease so a run always lands in the second half of a lease (renew-at-half) before it expires."""
    finite = [lease for lease in leases if lease > 0]
    if not finite or configured <= 0:  # 0: never
        return configured
    return max(30, min(configured, min(finite) // 3))


ALERT_AFTER_FAILURES = 3  # transient failures (one lost UDP answer) are not worth waking someone


def failure_alert_due(failures: int, threshold: int = ALERT_AFTER_FAILURES) -> bool:
    return failures >= threshold


def recovered(prev_failures: int, failures: int, threshold: int = ALERT_AFTER_FAILURES) -> bool:
    """A job that had been alerted as failing works again."""
    return prev_failures >= threshold and failures == 0


def alert_allowed(last_sent: Mapping[str, float], key: str, now: float, min_interval: float) -> bool:
    """At most one alert per key (subject + kind) every min_interval seconds."""
    last = last_sent.get(key)
    return last is None or now - last >= min_interval or now < last  # a clock step back must not mute alerts


def router_needed(cfg: "Config", owned_mappings: bool) -> bool:
    """Does anything configured use the router? Mappings (or natlink mappings left on it from an older config,
    still to be removed) or the "router" public-IP source. A DDNS-only setup on echo sources does not."""
    return bool(cfg.mappings) or owned_mappings or "router" in cfg.public_ip.sources


def job_intervals(cfg: "Config", owned_mappings: bool) -> dict[str, int]:
    """The jobs the service runs and their intervals in seconds. One rule for [schedule]: 0 means never, the job
    is absent (it does not run on events either). Jobs with nothing to do are absent too."""
    s = cfg.schedule
    router = router_needed(cfg, owned_mappings)
    leases = [m.lease for m in cfg.mappings]
    wanted = {
        MAPPINGS: mappings_interval(s.mappings, leases) if cfg.mappings or owned_mappings else 0,
        PUBLIC_IP: s.public_ip if router else 0,
        DDNS: s.ddns,  # also detects the public IP, which status and the probe use
        PROBE: s.probe if cfg.probes else 0,
    }
    return {name: interval for name, interval in wanted.items() if interval > 0}


@dataclass(frozen=True)
class Streak:
    """Consecutive failures of one subject (a mapping, an entry, a probe) and whether "lost" was alerted."""

    failures: int = 0
    alerted: bool = False


def streak_step(streak: Streak, ok: bool, threshold: int = ALERT_AFTER_FAILURES) -> tuple[Streak, str | None]:
    """-> the new streak and "lost" (the threshold-th failure in a row), "restored" (ok after "lost") or None."""
    if ok:
        return Streak(), "restored" if streak.alerted else None
    failures = streak.failures + 1
    if not streak.alerted and failures >= threshold:
        return Streak(failures, True), "lost"
    return Streak(failures, streak.alerted), None


def ipv6_prefix(address: str | None, length: int = 64) -> str | None:
    """The /64 an IPv6 address is in (what an ISP hands out and changes), None for no or a malformed address."""
    import ipaddress

    try:
        return str(ipaddress.IPv6Network(f"{address}/{length}", strict=False)) if address else None
    except ValueError:
        return None
