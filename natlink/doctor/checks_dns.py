"""Link 7: every DDNS name resolves to the current public IP — asked at the authoritative server where known
(rfc2136 `server`; otherwise the zone's NS), with the TTL, so a stale record is seen before caches expire."""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from natlink.config import Config, DdnsCfg
from natlink.doctor.model import CheckResult, fail, ok, skipped, warn
from natlink.hostport import parse_server

log = logging.getLogger(__name__)

LINK = 7


@dataclass(frozen=True)
class Lookup:
    hostname: str
    server: str  # "11.0.0.1:53 (authoritative)" or "system resolver"
    addresses: tuple[str, ...] = ()
    ttl: int | None = None
    error: str | None = None  # "NXDOMAIN", "timeout", ...
    elapsed: float = 0.0


def dns_check(entry: str, lookup: Lookup, public_ip: str | None) -> CheckResult:
    """PURE: one hostname's answer against the public IPv4 address."""
    h = lookup.hostname
    data = {"ddns": entry, "server": lookup.server, "addresses": list(lookup.addresses), "ttl": lookup.ttl,
            "public_ip": public_ip}
    kw = {"subject": h, "data": data, "elapsed": lookup.elapsed}
    if lookup.error:
        return fail(LINK, "dns", f"{h}: no A record at {lookup.server} ({lookup.error})",
                    f"run `natlink ddns` to publish it (entry {entry!r}), and check the zone/hostname", cause="no-record",
                    **kw)
    ttl = f"TTL {lookup.ttl} s" if lookup.ttl is not None else "TTL unknown"
    shown = ", ".join(lookup.addresses)
    if public_ip is None:
        return skipped(LINK, "dns", f"{h} → {shown} ({ttl}); the public IP is unknown, so it cannot be compared",
                       "fix link 3", **kw)
    if public_ip in lookup.addresses:
        extra = f" (also {', '.join(a for a in lookup.addresses if a != public_ip)})" if len(lookup.addresses) > 1 else ""
        if extra:
            return warn(LINK, "dns", f"{h} → {shown} at {lookup.server} ({ttl}): includes the public IP {public_ip}"
                                     f"{extra}", "remove the other A records, or clients may connect elsewhere",
                        cause="extra-records", **kw)
        return ok(LINK, "dns", f"{h} → {public_ip} at {lookup.server} ({ttl})", **kw)
    wait = f"; caches may keep the old answer up to {lookup.ttl} s after the fix" if lookup.ttl else ""
    return fail(LINK, "dns", f"{h} resolves to {shown} at {lookup.server} ({ttl}), but the public IP is {public_ip}",
                f"run `natlink ddns` (entry {entry!r}) or start `natlink run` to update it{wait}", cause="stale", **kw)


def _server_address(server: str, port: int) -> tuple[str, int]:
    host, port = parse_server(server, port)
    info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    return str(info[0][4][0]), port


def _ask(hostname: str, server: str, port: int, timeout: float,
         rtype: dns.rdatatype.RdataType = dns.rdatatype.A) -> tuple[tuple[str, ...], int | None, str | None]:
    query = dns.message.make_query(hostname, rtype)
    answer = dns.query.udp(query, server, timeout=timeout, port=port)
    if answer.flags & 0x0200:  # TC: truncated, ask again over TCP
        answer = dns.query.tcp(query, server, timeout=timeout, port=port)
    if answer.rcode() != dns.rcode.NOERROR:
        return (), None, dns.rcode.to_text(answer.rcode())
    for rrset in answer.answer:
        if rrset.rdtype == rtype:
            return tuple(sorted(r.address for r in rrset)), int(rrset.ttl), None
    return (), None, f"no {dns.rdatatype.to_text(rtype)} record (NODATA)"


def _authoritative(hostname: str, timeout: float) -> tuple[str, int] | None:
    """An address of one of the zone's NS (real providers); None when it cannot be found."""
    try:
        resolver = dns.resolver.Resolver()
        resolver.lifetime = timeout
        zone = dns.resolver.zone_for_name(hostname, resolver=resolver)
        ns = resolver.resolve(zone, "NS")
        target = str(sorted(ns, key=str)[0].target)
        return str(resolver.resolve(target, "A")[0].address), 53
    except Exception as exc:  # noqa: BLE001 - any failure falls back to the system resolver
        log.debug("authoritative lookup for %s: %s", hostname, exc)
        return None


def lookup(entry: DdnsCfg, hostname: str, timeout: float = 2.0, rtype: str = "A") -> Lookup:
    """``hostname``'s A (or AAAA) records, at the authoritative server where known."""
    started = time.monotonic()
    try:
        if entry.provider == "rfc2136" and entry.options.get("server"):
            server = str(entry.options["server"])
            if "://" in server:
                server = server.split("://", 1)[1].split("/", 1)[0]
            where = _server_address(server, int(entry.options.get("port") or 53))
        else:
            where = _authoritative(hostname, timeout)
        if where is None:
            resolver = dns.resolver.Resolver()
            resolver.lifetime = timeout
            try:
                answer = resolver.resolve(hostname, rtype)
            except dns.resolver.NXDOMAIN:
                return Lookup(hostname, "system resolver", error="NXDOMAIN", elapsed=time.monotonic() - started)
            return Lookup(hostname, "system resolver", tuple(sorted(r.address for r in answer)),
                          int(answer.rrset.ttl) if answer.rrset is not None else None,
                          elapsed=time.monotonic() - started)
        addrs, ttl, error = _ask(hostname, where[0], where[1], timeout, dns.rdatatype.from_text(rtype))
        label = f"{where[0]}:{where[1]} (authoritative)" if where[1] != 53 else f"{where[0]} (authoritative)"
        return Lookup(hostname, label, addrs, ttl, error, time.monotonic() - started)
    except dns.exception.Timeout:
        return Lookup(hostname, "the DNS server", error="timeout", elapsed=time.monotonic() - started)
    except (OSError, dns.exception.DNSException) as exc:
        return Lookup(hostname, "the DNS server", error=str(exc) or type(exc).__name__, elapsed=time.monotonic() - started)


def dns_checks(cfg: Config, public_ip: str | None, pool: object | None = None) -> list[CheckResult]:
    if not cfg.ddns:
        return [skipped(LINK, "dns", "no [[ddns]] entry configured",
                        "add a [[ddns]] entry if your public IP changes (most home connections)",
                        cause="not-configured")]
    items = [(e, h) for e in cfg.ddns if e.ipv4 for h in e.hostnames]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(items)))) as ex:
        lookups = list(ex.map(lambda item: lookup(item[0], item[1]), items))
    return [dns_check(e.name, lk, public_ip) for (e, _), lk in zip(items, lookups)]
