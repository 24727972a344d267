"""Create or renew all configured port mappings now.

Asks the router what it has — over UPnP its table, over NAT-PMP/PCP (which cannot list it) each mapping is
requested again ("verify", idempotent) — prints the plan (add / renew / replace / keep / verify / delete),
applies it and reads back what the router reports. With --dry-run it stops after the plan. Exit 1 if any mapping failed or the router's
WAN address means mappings cannot work (CGNAT, private, none).
"""

from __future__ import annotations

import argparse
import sys

from natlink.errors import EXIT_OK, EXIT_RUNTIME


PAST = {"add": "added", "renew": "renewed", "replace": "replaced", "keep": "kept", "verify": "verified by the router",
        "delete": "deleted"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print the plan (add / renew / replace / keep) and change nothing")


def fmt_mapping(m) -> str:
    return f"{m.protocol.upper()} {m.external_port} → {m.internal_ip}:{m.internal_port}"


def describe_router(ctx, router, external_ip) -> None:
    out = ctx.out
    found = {"config": "from router.igd_url", "cache": "cached",
             "ssdp": "found by SSDP"}.get(router.igd_url_source or "", "")
    out.line(f"router: {router.describe()}{f' ({found})' if found else ''}, WAN address {external_ip or 'none'}"
             f", answered in {router.open_time * 1000:.0f} ms")
    if router.lan_ip_source == "auto":
        out.line(f"lan ip: {router.lan_ip} (auto: this host's source address toward the gateway {router.gateway})")
    if router.epoch_dropped:
        out.line("the router restarted or changed its address since natlink last asked, and forgot its mappings"
                 + (f" (epoch {router.previous_epoch} → {router.epoch})" if ctx.verbose else ""))
    elif router.epoch is not None and ctx.verbose:
        out.line(f"router up for {router.epoch} s (its {router.label} epoch)")


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.portmap.session import RouterSession
    from natlink.state import StateStore

    cfg = ctx.config()
    out = ctx.out
    if not cfg.mappings:
        out.result("no [[mapping]] in the config: nothing to map")
        out.json({"ok": True, "plan": [], "actions": []})
        return EXIT_OK
    store = StateStore(cfg.service.state_dir)
    with RouterSession.for_config(cfg, store) as session:
        session.start()  # the discovery burst waits for the router while the rest of the command loads
        # loaded now, while the router answers: the reconcile, and what the report needs after it
        from natlink import families  # noqa: F401
        from natlink.commands import map_ipv6  # noqa: F401
        from natlink.portmap import pinhole_state  # noqa: F401 - map_ipv6 asks it whether natlink has pinholes
        from natlink.portmap.reconcile import reconcile

        report = reconcile(cfg, store, dry_run=args.dry_run, session=session)
    return _report(ctx, args, cfg, store, report)


def _report(ctx, args: argparse.Namespace, cfg, store, report) -> int:
    from natlink import families
    from natlink.commands import map_ipv6

    out = ctx.out
    describe_router(ctx, report.router, report.external_ip)
    if report.wan_problem:
        # No plan lines: with no usable WAN address nothing is planned, and a list of adds would read as if
        # they were about to happen.
        print(f"natlink: {report.wan_problem} — nothing was planned or mapped over IPv4", file=sys.stderr, flush=True)
        v6 = map_ipv6.pinholes(ctx, cfg, store, getattr(report.router, "upnp_url", None), args.dry_run)
        v4_verdict, v6_verdict = map_ipv6.verdicts(cfg, report, v6)
        out.json({**report.to_json(), "ipv6": v6.to_json() if v6 else None,
                  "verdicts": [v4_verdict.to_json(), v6_verdict.to_json()]})
        if v6 is not None:
            out.result(families.summary(v4_verdict, v6_verdict))
        # Reachable over IPv6 only is a success when every mapping asks for IPv6 and got its pinhole.
        every6 = all(cfg.mapping_ipv6(m) for m in cfg.mappings)
        return EXIT_OK if v6_verdict.state == families.OPEN and every6 and not args.dry_run else EXIT_RUNTIME
    if report.dhcp_warning:
        out.note(f"warning: {report.dhcp_warning}")
    if report.epoch_lost:
        out.note("note: the router lost its mappings since the last run (it restarted or got a new address); "
                 "re-creating them")
    out.line("plan:" if not args.dry_run else "plan (dry run, nothing changed):")
    for step in report.plan.steps:
        m = step.want or step.have
        out.line(f"  {step.action:<8} {step.name:<14} {fmt_mapping(m)}  ({step.reason})")
    v6 = map_ipv6.pinholes(ctx, cfg, store, getattr(report.router, "upnp_url", None), args.dry_run)
    v4_verdict, v6_verdict = map_ipv6.verdicts(cfg, report, v6)
    out.json({**report.to_json(), "ipv6": v6.to_json() if v6 else None,
              "verdicts": [v4_verdict.to_json(), v6_verdict.to_json()]})
    if args.dry_run:
        conflicts = report.plan.of("conflict")
        for s in conflicts:
            print(f"natlink: {s.name}: {s.reason} — free the port, choose another external_port, or set "
                  "allow_other_port = true", file=sys.stderr)
        return EXIT_RUNTIME if conflicts else EXIT_OK
    for a in report.errors:
        err = a.error
        print(f"natlink: {a.name}: {err.message if err else a.detail}{' — ' + err.hint if err and err.hint else ''}",
              file=sys.stderr, flush=True)
    counts: dict[str, int] = {}
    for a in report.actions:
        if a.ok:
            counts[a.action] = counts.get(a.action, 0) + 1
    summary = ", ".join(f"{n} {PAST.get(k, k)}" for k, n in counts.items())
    if v6 is not None:
        out.result(families.summary(v4_verdict, v6_verdict))
    if report.ok and (v6 is None or v6.ok):
        out.result(f"ok: {summary or 'nothing to do'}" + ("" if report.changed else " (no changes)"))
        return EXIT_OK
    if report.ok and v6 is not None:
        out.result("failed: IPv6 pinholes" + (f" ({summary} over IPv4)" if summary else ""))
        return EXIT_RUNTIME
    out.result(f"failed: {len(report.errors)} of {len(report.actions)} mapping steps failed"
               + (f" ({summary})" if summary else ""))
    return EXIT_RUNTIME
