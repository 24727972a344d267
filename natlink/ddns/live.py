"""The live record: what the zone's authoritative name server answers for a name, asked directly.

A caching resolver may hold the old address for a TTL or more, so it is only used to find the zone and its
NS names (and their addresses); the record itself is asked from each authoritative server with recursion off,
and only an authoritative answer (AA flag) counts. An entry's `nameserver` option names the authoritative
server itself (a hidden primary, a split horizon, a lab), skipping the discovery.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from natlink import hostport

log = logging.getLogger(__name__)

RTYPE = {4: "A", 6: "AAAA"}
TIMEOUT = 3.0


@dataclass(frozen=True)
class LiveRecord:
    hostname: str
    family: int
    addresses: frozenset[str] | None  # None: not known (see problem)
    server: str = ""  # the authoritative server that answered
    problem: str | None = None  # why the record could not be read

    def describe(self) -> str:
        return ", ".join(sorted(self.addresses or ())) or "missing"


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """A DNS server, port 53 unless it names one (natlink.hostport.parse_server)."""
    return hostport.parse_server(text, default_port)


def _addresses(resolver: dns.resolver.Resolver, host: str) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    out = []
    for rtype in ("A", "AAAA"):
        try:
            out += [rd.to_text() for rd in resolver.resolve(host, rtype)]
        except dns.exception.DNSException:
            continue
    return out


def authoritative_servers(hostname: str, bootstrap: list[str] | None = None,
                          timeout: float = TIMEOUT) -> tuple[str, list[str]]:
    """(zone, addresses of its NS) found through a resolver (the system's, or `bootstrap` addresses)."""
    resolver = dns.resolver.Resolver(configure=bootstrap is None)
    if bootstrap is not None:
        resolver.nameservers = list(bootstrap)
    resolver.lifetime = timeout
    zone = dns.resolver.zone_for_name(hostname, resolver=resolver, lifetime=timeout)
    names = [rd.target.to_text() for rd in resolver.resolve(zone, "NS")]
    addresses = [ip for name in names for ip in _addresses(resolver, name)]
    return zone.to_text(omit_final_dot=True), addresses


def target(options: Any, spec: Any) -> dict[str, Any]:
    """Where an entry's live record is asked: its `nameserver` option, else the option naming the
    authoritative server itself (rfc2136: server, port), else {} (discovery)."""
    if options.get("nameserver"):
        return {"nameserver": str(options["nameserver"])}
    own = getattr(spec, "verify_server_option", None)
    if own and options.get(own):
        return {"nameserver": str(options[own]), "port": int(options.get("port") or 53)}
    return {}


def fqdn(hostname: str, spec: Any) -> str:
    """The DNS name behind an entry's hostname (DuckDNS entries may name only the subdomain: "myhome")."""
    name = hostname.rstrip(".")
    suffix = getattr(spec, "preset", {}).get("zone_suffix")
    return f"{name}.{suffix}" if suffix and "." not in name else name


def ask(server: str, port: int, hostname: str, family: int, timeout: float = TIMEOUT) -> LiveRecord:
    """One question to one authoritative server, recursion off; only an authoritative answer counts."""
    where = f"{server}:{port}" if port != 53 else server
    try:
        ipaddress.ip_address(server)
    except ValueError:
        try:
            server = str(socket.getaddrinfo(server, port, type=socket.SOCK_DGRAM)[0][4][0])
        except OSError as exc:
            return LiveRecord(hostname, family, None, where, f"cannot resolve {where} ({exc.strerror or exc})")
    query = dns.message.make_query(hostname, RTYPE[family])
    query.flags &= ~dns.flags.RD
    try:
        response = dns.query.udp(query, server, timeout=timeout, port=port)
        if response.flags & dns.flags.TC:
            response = dns.query.tcp(query, server, timeout=timeout, port=port)
    except (OSError, dns.exception.DNSException) as exc:
        return LiveRecord(hostname, family, None, where, f"no answer from {where} ({exc.__class__.__name__})")
    if not response.flags & dns.flags.AA:
        return LiveRecord(hostname, family, None, where, f"{where} is not authoritative for {hostname}")
    qname = dns.name.from_text(hostname)
    rrsets = [r for r in response.answer if r.name == qname]
    if any(r.rdtype == dns.rdatatype.CNAME for r in rrsets):  # (NXDOMAIN too when its target is missing)
        return LiveRecord(hostname, family, None, where, f"{hostname} is a CNAME at {where}")
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return LiveRecord(hostname, family, frozenset(), where)
    if rcode != dns.rcode.NOERROR:
        return LiveRecord(hostname, family, None, where, f"{where} answered {dns.rcode.to_text(rcode)}")
    wanted = dns.rdatatype.from_text(RTYPE[family])
    found = frozenset(rd.to_text() for r in rrsets if r.rdtype == wanted for rd in r)
    return LiveRecord(hostname, family, found, where)


def lookup(hostname: str, family: int, nameserver: str | None = None, *, port: int = 53,
           bootstrap: list[str] | None = None, timeout: float = TIMEOUT) -> LiveRecord:
    """The record as the zone's authoritative server answers it (the first authoritative answer wins)."""
    return lookup_all(hostname, (family,), nameserver, port=port, bootstrap=bootstrap, timeout=timeout)[0]


def lookup_all(hostname: str, families: tuple[int, ...] | list[int], nameserver: str | None = None, *,
               port: int = 53, bootstrap: list[str] | None = None, timeout: float = TIMEOUT) -> list[LiveRecord]:
    """`lookup` for several families, finding the name servers once."""
    if nameserver:
        host, port = parse_server(nameserver, port)
        servers = [host]
    else:
        try:
            _, servers = authoritative_servers(hostname, bootstrap, timeout)
        except dns.exception.DNSException as exc:
            problem = (f"cannot find the name servers of {hostname}'s zone ({exc.__class__.__name__}); "
                       "set nameserver = \"...\"")
            return [LiveRecord(hostname, family, None, "", problem) for family in families]
    records = []
    for family in families:
        problems = []
        for server in servers:
            record = ask(server, port, hostname, family, timeout)
            if record.problem is None:
                break
            problems.append(record.problem)
        else:
            record = LiveRecord(hostname, family, None, "", "; ".join(problems) or f"no name server for {hostname}")
        records.append(record)
    return records


def check(hostnames: tuple[str, ...] | list[str], addresses: dict[int, str], where: dict[str, Any],
          spec: Any = None) -> str | None:
    """None when every name's live record holds exactly the address; else one sentence."""
    for hostname in (fqdn(h, spec) for h in hostnames):
        records = lookup_all(hostname, sorted(addresses), **where)
        unreadable = [r.problem for r in records if r.problem]
        if unreadable:
            return f"could not read {hostname} back: {unreadable[0]}"
        drifted = drift(records, addresses)
        if drifted:
            return "; ".join(drifted.values())
    return None


def drift(records: list[LiveRecord], want: dict[int, str]) -> dict[int, str]:
    """Families whose live record differs from what should be published: family -> a sentence (pure)."""
    out = {}
    for record in records:
        ip = want.get(record.family)
        if ip is None or record.addresses is None or record.addresses == {ip}:
            continue
        out[record.family] = (f"{record.hostname} {RTYPE[record.family]} at {record.server} is "
                              f"{record.describe()}, not {ip}")
    return out
