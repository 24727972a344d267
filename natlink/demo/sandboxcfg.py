"""The config natlink runs with inside the sandbox: the built-in story's, or the user's own adapted to it.

PURE: TOML text from a SandboxFacts and (optionally) the user's parsed Config; every change made to the
user's config is explained in a note, so they know what the sandbox could not show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from natlink.config import Config

DEMO_HOSTNAME = "rdp.home.example"


@dataclass(frozen=True)
class SandboxFacts:
    lan_ip: str
    gateway: str
    dns_server: str
    zone: str
    tsig_key_file: str
    reflector_url: str
    state_dir: str


@dataclass
class SandboxConfig:
    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return to_toml(self.document)

    @property
    def mappings(self) -> list[dict[str, Any]]:
        return list(self.document.get("mapping", []))

    @property
    def hostnames(self) -> list[str]:
        return [h for d in self.document.get("ddns", []) for h in d["hostnames"]]

    def tcp_ports(self) -> list[int]:
        """Internal ports that need a stand-in service on the LAN host (TCP mappings only)."""
        return sorted({m["internal_port"] for m in self.mappings if m["protocol"] == "tcp"})


def _common(facts: SandboxFacts) -> dict[str, Any]:
    return {
        "public_ip": {"sources": ["router"]},
        "schedule": {"jitter": 0},
        "service": {"state_dir": facts.state_dir},
    }


def _ddns(facts: SandboxFacts, name: str, hostnames: list[str]) -> dict[str, Any]:
    return {"name": name, "provider": "rfc2136", "hostnames": hostnames, "server": facts.dns_server,
            "tsig_key_file": facts.tsig_key_file, "ttl": 60}


def _probe(facts: SandboxFacts, name: str, mapping: str) -> dict[str, Any]:
    return {"name": name, "mapping": mapping, "via": "reflector", "reflector": facts.reflector_url}


def default_config(facts: SandboxFacts) -> SandboxConfig:
    """The story's config: remote desktop on the LAN host, published as rdp.home.example."""
    doc = {
        "router": {"gateway": facts.gateway, "lan_ip": facts.lan_ip, "lease": 3600, "timeout": 2},
        "mapping": [{"name": "rdp", "protocol": "tcp", "external_port": 3390, "internal_port": 3389,
                     "internal_ip": facts.lan_ip, "description": "remote desktop"}],
        "ddns": [_ddns(facts, "home", [DEMO_HOSTNAME])],
        "probe": [_probe(facts, "rdp", "rdp")],
        **_common(facts),
    }
    return SandboxConfig(doc)


def sandbox_hostname(provider: str, hostname: str) -> str:
    """The full DNS name an entry publishes (DuckDNS takes bare subdomains)."""
    name = hostname.rstrip(".").lower()
    if provider == "duckdns" and "." not in name:
        return f"{name}.duckdns.org"
    return name


def zone_for(hostname: str) -> str:
    """The zone the sandbox's DNS server holds a name in: its parent, or the name itself when that
    would leave a bare top-level domain."""
    labels = hostname.rstrip(".").lower().split(".")
    return ".".join(labels[1:]) if len(labels) >= 3 else ".".join(labels)


def user_zones(cfg: Config) -> list[str]:
    """Zones the sandbox's knot must serve so the user's DDNS names can be published there."""
    return sorted({zone_for(sandbox_hostname(d.provider, h)) for d in cfg.ddns for h in d.hostnames})


def user_config(cfg: Config, facts: SandboxFacts) -> SandboxConfig:
    """The user's mappings and DDNS entries, pointed at the sandbox; notes say what changed and why."""
    notes: list[str] = []
    r = cfg.router
    if r.lan_ip not in ("auto", facts.lan_ip):
        notes.append(f"router.lan_ip {r.lan_ip} -> {facts.lan_ip}: the sandbox's LAN host stands in for yours")
    if r.gateway and r.gateway != facts.gateway:
        notes.append(f"router.gateway {r.gateway} -> {facts.gateway}: the sandbox's router")
    if r.igd_url:
        notes.append(f"router.igd_url {r.igd_url} is not used: natlink finds the sandbox router itself")
    router = {"protocols": list(r.protocols), "gateway": facts.gateway, "lan_ip": facts.lan_ip, "lease": r.lease,
              "timeout": r.timeout}

    mappings = []
    for m in cfg.mappings:
        if m.internal_ip not in (None, facts.lan_ip, r.lan_ip):
            notes.append(f"mapping {m.name}: internal_ip {m.internal_ip} -> {facts.lan_ip} (the sandbox has one "
                         "LAN host; a router in secure mode only maps to the host that asks)")
        entry: dict[str, Any] = {"name": m.name, "protocol": m.protocol, "external_port": m.external_port,
                                 "internal_port": m.internal_port, "internal_ip": facts.lan_ip,
                                 "allow_other_port": m.allow_other_port, "lease": m.lease}
        if m.description:
            entry["description"] = m.description
        if m.protocol == "udp":
            notes.append(f"mapping {m.name}: UDP {m.external_port} is mapped, but the outside check is TCP only")
        mappings.append(entry)
    if not mappings:
        notes.append("the config has no [[mapping]]: nothing to map, probe or repair")

    if any(s != "router" for s in cfg.public_ip.sources):
        others = ", ".join(s for s in cfg.public_ip.sources if s != "router")
        notes.append(f"public_ip.sources: only \"router\" is asked ({others} would leave the sandbox)")
    if cfg.public_ip.ipv6:
        notes.append("public_ip.ipv6: the sandbox is IPv4-only, so no AAAA record is published")

    ddns = []
    for d in cfg.ddns:
        names = [sandbox_hostname(d.provider, h) for h in d.hostnames]
        where = f"{d.provider} at {d.options['server']}" if d.options.get("server") else d.provider
        notes.append(f"ddns {d.name}: {', '.join(names)} published by RFC 2136 to the sandbox's DNS server "
                     f"{facts.dns_server} instead of {where} (your credentials are not used)")
        if d.ipv6 and not d.ipv4:
            notes.append(f"ddns {d.name}: IPv6-only entries cannot be shown in the IPv4-only sandbox; skipped")
            continue
        ddns.append(_ddns(facts, d.name, names))

    by_mapping = {p.mapping: p for p in cfg.probes if p.mapping}
    for p in cfg.probes:
        if p.target:
            notes.append(f"probe {p.name}: target {p.target} is outside the sandbox; each TCP mapping is probed instead")
        elif p.via != "reflector" or p.reflector != facts.reflector_url:
            notes.append(f"probe {p.name}: checked through the sandbox's reflector on the internet host "
                         f"(instead of {p.via}{' ' + p.reflector if p.reflector else ''})")
    probes = [_probe(facts, by_mapping[m["name"]].name if m["name"] in by_mapping else m["name"], m["name"])
              for m in mappings if m["protocol"] == "tcp"]

    svc = cfg.service
    if svc.alerts.webhook or svc.alerts.command:
        notes.append("service.alerts: not sent from the sandbox")
    if svc.metrics:
        notes.append(f"service.metrics {svc.metrics}: not served in the sandbox")
    doc = {"router": router, "mapping": mappings, "ddns": ddns, "probe": probes, **_common(facts)}
    s = cfg.schedule
    doc["schedule"] = {"mappings": s.mappings, "ddns": s.ddns, "probe": s.probe, "public_ip": s.public_ip, "jitter": 0}
    return SandboxConfig(doc, notes)


# --------------------------------------------------------------------------- TOML


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(doc: dict[str, Any]) -> str:
    """Tables of scalars and lists, and arrays of such tables: all a natlink config needs."""
    out = ["# written by `natlink demo` for its sandbox; throwaway\n"]
    for name, body in doc.items():
        tables = body if isinstance(body, list) else [body]
        for table in tables:
            out.append(f"\n[[{name}]]\n" if isinstance(body, list) else f"\n[{name}]\n")
            out.extend(f"{k} = {_value(v)}\n" for k, v in table.items() if v is not None)
    return "".join(out)
