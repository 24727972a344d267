"""List the router's mapping table, marking natlink's own.

Shows external port, protocol, internal host:port, lease left, description, and whether natlink owns it.
NAT-PMP and PCP cannot read a router's table: then natlink's own records are shown.
"""

from __future__ import annotations

import argparse
import time

from natlink.errors import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def _lease(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    if seconds == 0:
        return "permanent"
    from natlink.durations import format_duration
    return format_duration(seconds)


def _connection(c: dict, verbose: bool) -> str:
    from natlink.durations import format_duration

    text = c.get("status") or "unknown"
    if c.get("uptime"):
        text += f", up {format_duration(int(c['uptime']))}"
    if verbose and c.get("type"):
        text += f" ({c['type']})"
    return text


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.portmap.plan import owned_name
    from natlink.portmap.reconcile import load_owned
    from natlink.portmap.router import open_router
    from natlink.state import store_for

    cfg = ctx.config(check_secrets=False, defaults_ok=True)
    out = ctx.out
    store = store_for(cfg)
    # Discovery hears every protocol: the table is read over UPnP whenever UPnP answered, whichever maps.
    router = open_router(cfg.router, store)
    try:
        owned = load_owned(store)
        table = router.table()
        rows = []
        if table is not None:
            for m in table:
                name = owned_name(m, owned, router.lan_ip)
                if name is None and m.owner_name is None:  # made through NAT-PMP/PCP (the router's description)?
                    rec = next((r for r in owned.values() if r.mapper != "upnp" and r.protocol == m.protocol
                                and r.external_port == m.external_port and r.internal_ip == m.internal_ip), None)
                    name = rec.name if rec else None
                rows.append({**m.to_json(), "ours": name is not None, "name": name})
        else:
            now = time.time()
            for name, rec in sorted(owned.items()):
                if rec.mapper != router.mapper:
                    continue
                left = 0 if rec.lease == 0 else max(0, int(rec.granted_at + rec.lease - now))
                rows.append({**rec.mapping().to_json(), "lease": left, "ours": True, "name": name})
        source = "the router's table (read now)" if table is not None else (
            f"natlink's records, not checked with the router ({router.label} cannot list its table; "
            "`natlink map` asks the router again for each)")
        external = router.external_ip()
        connection = router.client.connection() if hasattr(router.client, "connection") else None
        out.json({"ok": True, "router": router.to_json(), "external_ip": external, "connection": connection,
                  "source": "router" if table is not None else "state", "mappings": rows})
        out.line(f"router:           {router.describe()}")
        out.line(f"external address: {external or 'none reported (the router is not connected, or behind another NAT)'}")
        if connection is not None:
            out.line(f"connection:       {_connection(connection, ctx.verbose)}")
        choice = router.wan_service
        if choice is not None and choice.source != "only":  # several WAN services: which one, and why
            out.line(f"WAN service:      {choice.reason}")
        out.line(f"{source}:")
        if not rows:
            out.result("no mappings")
            return EXIT_OK
        out.line(f"  {'EXT':>5} {'PROTO':<5} {'INTERNAL':<21} {'LEASE':<10} {'OURS':<4} DESCRIPTION")
        for r in rows:
            out.result(f"  {r['external_port']:>5} {r['protocol'].upper():<5} "
                       f"{r['internal_ip'] + ':' + str(r['internal_port']):<21} {_lease(r['lease']):<10} "
                       f"{'yes' if r['ours'] else 'no':<4} {r['description']}")
        return EXIT_OK
    finally:
        router.close()
