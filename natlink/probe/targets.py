"""What a probe run probes: the targets named on the command line or in [[probe]] entries, resolved against the
config (mapping -> ports and internal address), and their hosts' addresses."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, replace
from typing import Iterable

from natlink.config import Config, ProbeCfg, parse_target
from natlink.errors import NatlinkError, UsageError
from natlink.secrets import Secret, SecretUnavailable, read_secret

InsideKey = tuple[str, int, str]  # (internal ip, internal port, protocol): one inside view per key


@dataclass(frozen=True)
class Target:
    name: str
    via: str
    protocol: str
    external_port: int
    probe: ProbeCfg  # where the outside is (reflector / echoip URL, token, timeout)
    host: str | None = None  # a bare "host:port" target's host
    internal_ip: str | None = None  # "auto" is resolved in probe_all
    internal_port: int | None = None
    mapping: str | None = None

    @property
    def internal(self) -> str | None:
        if not self.internal_ip or not self.internal_port:
            return None
        return f"[{self.internal_ip}]:{self.internal_port}" if ":" in self.internal_ip else \
            f"{self.internal_ip}:{self.internal_port}"


def resolve_targets(cfg: Config, names: Iterable[str] | None = None) -> list[Target]:
    """[[probe]] entries, or the named probes / mappings / host:port strings (UsageError, exit 2, if unknown)."""
    if not names:
        if not cfg.probes:
            raise UsageError("no [[probe]] is configured",
                             'add [[probe]] mapping = "NAME" via = "reflector" reflector = "http://HOST:8765"')
        return [_from_probe(cfg, p) for p in cfg.probes]
    out: list[Target] = []
    for name in names:
        probe = next((p for p in cfg.probes if p.name == name), None)
        if probe is not None:
            out.append(_from_probe(cfg, probe))
            continue
        template = _template(cfg, name)
        if cfg.mapping(name) is not None:
            out.append(_from_probe(cfg, replace(template, name=name, mapping=name, target=None)))
        elif parse_target(name) is not None:
            out.append(_from_probe(cfg, replace(template, name=name, mapping=None, target=name)))
        else:
            known = [p.name for p in cfg.probes] + [m.name for m in cfg.mappings]
            raise UsageError(f"{name!r} is not a probe, a mapping or host:port",
                             f"use one of {', '.join(known)} or HOST:PORT" if known else "use HOST:PORT")
    return out


def _template(cfg: Config, name: str) -> ProbeCfg:
    """Ad-hoc targets borrow the outside of the first configured reflector/echoip probe."""
    template = next((p for p in cfg.probes if p.via != "hairpin"), None) or next(iter(cfg.probes), None)
    if template is None:
        raise UsageError(f"cannot probe {name!r}: no [[probe]] says where the outside checker is",
                         'add a [[probe]] with via = "reflector" and reflector = "http://HOST:8765"')
    return template


def _from_probe(cfg: Config, p: ProbeCfg) -> Target:
    if p.mapping is not None:
        m = cfg.mapping(p.mapping)
        if m is None:  # config validation already refuses this; keep the message anyway
            raise UsageError(f"probe {p.name!r} names mapping {p.mapping!r}, which does not exist", "fix the config")
        return Target(name=p.name, via=p.via, protocol=m.protocol, external_port=m.external_port, probe=p,
                      internal_ip=m.internal_ip or cfg.router.lan_ip, internal_port=m.internal_port, mapping=m.name)
    parsed = parse_target(p.target or "")
    if parsed is None:
        raise UsageError(f"probe {p.name!r}: target {p.target!r} is not host:port", "fix the config")
    return Target(name=p.name, via=p.via, protocol=p.protocol, external_port=parsed[1], probe=p, host=parsed[0])


def probe_secret(p: ProbeCfg) -> Secret | None:
    """The probe's reflector token, or None; NatlinkError naming the probe when it cannot be read."""
    if p.token is None:
        return None
    try:
        return read_secret(p.token)
    except SecretUnavailable as exc:
        raise NatlinkError(f"probe {p.name!r}: {exc.message}", exc.hint) from None


def resolve_auto(t: Target) -> Target:
    if t.internal_ip != "auto":
        return t
    toward = t.probe.reflector or t.probe.echoip or ""
    host = toward.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]") if toward else ""
    ip = _local_ip_toward(host) if host else None
    return replace(t, internal_ip=ip)


def inside_key(t: Target) -> InsideKey | None:
    if t.internal_ip is None or t.internal_port is None:
        return None
    return (t.internal_ip, t.internal_port, t.protocol)


def ipv6_targets(cfg: Config, tlist: list[Target]) -> dict[str, Target]:
    """Target name -> the same target seen at this host's global IPv6 address, for mappings with ipv6 (the
    pinhole opens the internal port there; the reflector dials back only the address that asked, so a mapping
    for another LAN host (ipv6_host) is not probed over IPv6)."""
    wants = {t.name: t for t in tlist if t.via == "reflector" and t.mapping and t.internal_port
             and (m := cfg.mapping(t.mapping)) is not None and cfg.mapping_ipv6(m) and not m.ipv6_host}
    if not wants:
        return {}
    from natlink.portmap.pinhole import current_selection

    address = current_selection(cfg).address
    return {n: replace(t, internal_ip=address) for n, t in wants.items()} if address else {}


def _local_ip_toward(host: str) -> str | None:
    """The source address this host uses toward `host` (a UDP connect sends nothing)."""
    try:
        infos = socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)
        fam, _t, _p, _c, sockaddr = infos[0]
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.connect(sockaddr)
            return str(s.getsockname()[0])
    except (OSError, IndexError):
        return None


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def resolve(host: str, family: str) -> str | None:
    try:
        fam = socket.AF_INET6 if family == "ipv6" else socket.AF_INET
        return str(socket.getaddrinfo(host, None, fam, socket.SOCK_STREAM)[0][4][0])
    except (OSError, IndexError):
        return None
