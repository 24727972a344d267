"""The IPv6 half of `natlink map` / `natlink unmap`: pinholes beside the IPv4 mappings, and the per-family
verdicts (natlink.families).

The pinhole code (UPnP's WANIPv6FirewallControl over http.client, PCP, address selection) is imported only
when this run touches IPv6: for an IPv4-only config it is a quarter of `natlink map`'s start-up.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from natlink import families

if TYPE_CHECKING:
    from natlink.portmap.pinhole import PinholeReport


def print_outcomes(ctx: Any, report: PinholeReport) -> None:
    out = ctx.out
    for note in report.notes:
        out.note(f"note: {note}")
    for o in report.outcomes:
        label = (o.hole or o.step.want or o.step.have)
        shown = label.label if label is not None else ""
        if o.ok:
            out.line(f"  {o.step.action:<8} {o.step.name:<14} {shown}  ({o.message})")
            for n in o.notes:
                out.line(f"           {n}")
        else:
            print(f"natlink: {o.step.name}: {o.message}{' — ' + o.hint if o.hint else ''}", file=sys.stderr, flush=True)
    if report.problem:
        print(f"natlink: IPv6: {report.problem}{' — ' + report.hint if report.hint else ''}", file=sys.stderr, flush=True)


def pinholes(ctx: Any, cfg: Any, store: Any, root_url: str | None, dry_run: bool) -> PinholeReport | None:
    """Open/renew the configured pinholes (dry run: print the plan); None when no mapping asks for IPv6 and
    natlink owns no pinhole."""
    out = ctx.out
    wanted = any(cfg.mapping_ipv6(m) for m in cfg.mappings)
    if dry_run:
        if not wanted:
            return None
        from natlink.portmap.pinhole import PinholeReport, current_selection, load_owned, plan, wants

        selection = current_selection(cfg)
        want = wants(cfg, selection)
        out.line(f"IPv6 pinholes (dry run) for {selection.address or 'no address: ' + str(selection.problem)}:")
        for step in plan(want, load_owned(store)):
            item = step.want or step.have
            out.line(f"  {step.action:<8} {step.name:<14} {item.label if item else ''}")
        return PinholeReport(selection)
    from natlink.portmap.pinhole_state import owned_records

    if not wanted and not owned_records(store):
        return None  # what reconcile_pinholes would find, without importing it
    from natlink.portmap.pinhole import MAPPER_LABEL, reconcile_pinholes

    report = reconcile_pinholes(cfg, store, root_url=root_url)
    if not report.outcomes and report.problem is None:
        return None
    via = f" (via {MAPPER_LABEL[report.mapper]}):" if report.mapper else ":"
    out.line(f"IPv6 pinholes for {report.address}{via}")
    print_outcomes(ctx, report)
    return report


def verdicts(cfg: Any, recon: Any, v6: PinholeReport | None) -> tuple[families.FamilyVerdict, families.FamilyVerdict]:
    ipv4_steps = [a for a in recon.actions] if getattr(recon, "actions", None) is not None else []
    v4 = families.ipv4(recon.external_ip, recon.wan_problem, (recon.ok if ipv4_steps else None))
    wanted = sum(1 for m in cfg.mappings if cfg.mapping_ipv6(m))
    if v6 is None:
        return v4, families.ipv6(wanted, False, None, None if wanted == 0 else "no pinhole was opened")
    return v4, families.ipv6(wanted, v6.ok and bool(v6.outcomes), v6.address, v6.problem)


def unmap_pinholes(ctx: Any, cfg: Any, store: Any, names: list[str] | None) -> PinholeReport:
    from natlink.portmap.pinhole import remove_pinholes

    report = remove_pinholes(cfg, store, names)
    print_outcomes(ctx, report)
    return report
