"""Section loaders for the network: [router], [[mapping]] and [public_ip]."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from natlink.config.model import PROTOCOLS, MappingCfg, PublicIpCfg, RouterCfg
from natlink.config.problems import Loader
from natlink.config.section import Section, did_you_mean, keys, shown, tables
from natlink.config.values import entry_name


def router(s: Section) -> RouterCfg:
    protocols = s.str_list("protocols", PROTOCOLS, nonempty=True)
    assert protocols is not None
    for p in protocols:
        if p not in PROTOCOLS:
            s.fail("protocols", f"{shown(p)} is not a protocol; use {', '.join(PROTOCOLS)}" + did_you_mean(p, PROTOCOLS))
    if len(set(protocols)) != len(protocols):
        s.fail("protocols", "lists a protocol twice")
    cfg = RouterCfg(
        protocols=protocols,
        gateway=s.ip("gateway"),
        igd_url=s.url("igd_url"),
        lan_ip=s.ip("lan_ip", allow_auto=True) or "auto",
        lease=s.duration("lease", RouterCfg.lease) or 0,
        timeout=s.seconds("timeout", RouterCfg.timeout),
    )
    if cfg.lease > 604800:
        s.fail("lease", f"{cfg.lease} s is longer than routers accept (at most 7 days, \"7d\"); use 0 for permanent")
    s.finish()
    return cfg


def mappings(loader: Loader, data: Any, router: RouterCfg) -> tuple[MappingCfg, ...]:
    names: set[str] = set()
    ports: dict[tuple[int, str], str] = {}
    found = [loader.guard(_mapping, s, names, ports, router) for s in tables(loader, data, "mapping",
                                                                              keys(MappingCfg))]
    return tuple(m for m in found if m is not None)


def _mapping(s: Section, names: set[str], ports: dict[tuple[int, str], str], router: RouterCfg) -> MappingCfg:
    name = entry_name(s, names)
    protocol = (s.string("protocol", "tcp", choices=("tcp", "udp", "TCP", "UDP")) or "tcp").lower()
    external = s.port("external_port", required=True)
    internal = s.port("internal_port") or external
    assert external is not None and internal is not None
    if (external, protocol) in ports:
        s.fail("external_port", f"{protocol.upper()} {external} is already used by mapping {ports[(external, protocol)]!r}")
    ports[(external, protocol)] = name
    internal_ip = s.ip("internal_ip")
    lease = s.duration("lease", router.lease) or 0
    ipv6 = s.get("ipv6", bool, None)
    ipv6_host = s.string("ipv6_host")
    if ipv6_host is not None:
        from natlink.ipv6addr import interface_id

        try:
            ipv6_host = interface_id(ipv6_host)
        except ValueError as exc:
            s.fail("ipv6_host", f"{exc} (an interface identifier like \"::201\" or \"mac:52:54:00:12:34:56\")")
    m = MappingCfg(name=name, protocol=protocol, external_port=external, internal_port=internal,
                   internal_ip=internal_ip, allow_other_port=s.boolean("allow_other_port", MappingCfg.allow_other_port),
                   lease=lease, description=s.string("description", "") or "", ipv6=ipv6, ipv6_host=ipv6_host)
    s.finish()
    return m


def public_ip(s: Section) -> PublicIpCfg:
    sources = s.str_list("sources", PublicIpCfg.sources, nonempty=True)
    assert sources is not None
    for src in sources:
        if src == "router" or (src.startswith("interface:") and len(src) > len("interface:")):
            continue
        parsed = urlparse(src)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            s.fail("sources", f"{shown(src)} is not a source; use \"router\", \"interface:NAME\" or an http(s) echo URL")
    quorum = s.get("quorum", int, PublicIpCfg.quorum)
    if quorum < 0:
        s.fail("quorum", "must be 0 (all answering sources agree) or a positive count")
    cfg = PublicIpCfg(sources=sources, ipv6=s.boolean("ipv6", PublicIpCfg.ipv6), quorum=quorum,
                      timeout=s.seconds("timeout", PublicIpCfg.timeout))
    s.finish()
    return cfg
