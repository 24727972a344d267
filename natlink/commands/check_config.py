"""Validate the config file and print a summary of what natlink will do with it."""

from __future__ import annotations

import argparse

from natlink.ddns import registry
from natlink.durations import format_duration


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(ctx, args: argparse.Namespace) -> int:
    cfg = ctx.config()
    out = ctx.out
    lan = cfg.router.lan_ip
    shown_lan = "this host" if lan == "auto" else lan
    summary = {
        "ok": True,
        "config": str(cfg.path),
        "router": {"protocols": list(cfg.router.protocols), "gateway": cfg.router.gateway or "default route",
                   "igd_url": cfg.router.igd_url, "lan_ip": lan, "lease": cfg.router.lease},
        "mappings": [{"name": m.name, "protocol": m.protocol, "external_port": m.external_port,
                      "internal": f"{m.internal_ip or lan}:{m.internal_port}", "ipv6": cfg.mapping_ipv6(m),
                      "ipv6_host": m.ipv6_host} for m in cfg.mappings],
        "public_ip": {"sources": list(cfg.public_ip.sources), "ipv6": cfg.public_ip.ipv6},
        "ddns": [{"name": d.name, "provider": d.provider, "hostnames": list(d.hostnames),
                  "secrets": {k: v.describe() for k, v in d.secrets.items()}} for d in cfg.ddns],
        "probes": [{"name": p.name, "target": p.mapping or p.target, "via": p.via} for p in cfg.probes],
        "schedule": {"mappings": cfg.schedule.mappings, "ddns": cfg.schedule.ddns, "probe": cfg.schedule.probe,
                     "public_ip": cfg.schedule.public_ip},
        "state_dir": cfg.service.state_dir,
    }
    out.json(summary)
    out.result(f"{cfg.path}: OK")
    out.line(f"router: {', '.join(cfg.router.protocols)} via {summary['router']['gateway']}, "
             f"mappings point at {shown_lan}{' (lan_ip = auto: its source address toward the gateway)' if lan == 'auto' else ''}, "
             f"lease {format_duration(cfg.router.lease) if cfg.router.lease else 'permanent'}")
    for m in cfg.mappings:
        six = ""
        if cfg.mapping_ipv6(m):  # no NAT66: the pinhole opens internal_port on the global address
            target = f"this host's prefix + {m.ipv6_host}" if m.ipv6_host else "this host's global IPv6 address"
            six = f"; IPv6 pinhole for port {m.internal_port} on {target}"
        out.line(f"mapping {m.name}: {m.protocol.upper()} {m.external_port} -> {m.internal_ip or shown_lan}:{m.internal_port}{six}")
    out.line(f"public IP from: {', '.join(cfg.public_ip.sources)}{' (and IPv6)' if cfg.public_ip.ipv6 else ''}")
    for d in cfg.ddns:
        secrets = "; ".join(f"{k} from {v.describe()}" for k, v in d.secrets.items())
        out.line(f"ddns {d.name}: {d.provider} for {', '.join(d.hostnames)}" + (f" ({secrets})" if secrets else "")
                 + f"; {registry.plan(registry.PROVIDERS[d.provider], d.options, d.ipv4, d.ipv6, d.verify)}")
    for p in cfg.probes:
        out.line(f"probe {p.name}: {p.mapping or p.target} via {p.via}")
    s = cfg.schedule
    out.line(f"schedule: mappings every {format_duration(s.mappings)}, ddns every {format_duration(s.ddns)}, "
             f"probe every {format_duration(s.probe) if s.probe else 'never'}, router address every "
             f"{format_duration(s.public_ip)}")
    out.line(f"state: {cfg.service.state_dir}")
    return 0
