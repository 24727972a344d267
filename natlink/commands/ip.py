"""Show the public IP address(es), the router's WAN address and what they mean for reachability.

Every configured source (router, echo URLs, interface:NAME) is asked at once; answers that are not public
addresses are not counted, and when the counted ones disagree no address is given. Exit 0 when the verdict
is "public", 1 otherwise (cgnat, double-nat, unknown)."""

from __future__ import annotations

import argparse
import logging
import time

from natlink.errors import NatlinkError

log = logging.getLogger(__name__)

_VERDICT_TEXT = {
    "public": "public — the router holds the public address; port mappings can be reached from the internet",
    "cgnat": "cgnat — carrier-grade NAT: port mappings cannot be reached from the internet",
    "double-nat": "double-nat — another router is in front of yours",
    "unknown": "unknown",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.publicip import detect
    from natlink.state import store_for

    cfg = ctx.config(defaults_ok=True)
    store = store_for(cfg)
    report = detect(cfg, store=store)
    try:  # remembered for `natlink status`; a read-only state dir must not break a read-only command
        store.save("publicip", report.to_json())
    except NatlinkError as exc:
        log.debug("not saving publicip state: %s", exc)
    ok = report.verdict == "public" and report.public_ipv4 is not None
    out = ctx.out
    out.json({"ok": ok, **report.to_json()})
    out.result(f"public IPv4: {report.public_ipv4 or 'unknown'}")
    if cfg.public_ip.ipv6:
        out.result(f"public IPv6: {report.public_ipv6 or 'unknown'}"
                   + (f" ({report.ipv6_problem})" if report.ipv6_problem else ""))
    router = report.router_wan_ipv4 or ("no external address reported" if report.router_answered
                                        else "no router answered")
    out.result(f"router WAN:  {router}")
    out.result(f"verdict:     {_VERDICT_TEXT.get(report.verdict, report.verdict)}")
    if report.problem:
        out.result(f"problem:     {report.problem}")
    if cfg.public_ip.ipv6:
        from natlink import families
        from natlink.portmap.pinhole_plan import load_owned

        holes = [n for n, h in load_owned(store).items() if h.address == report.public_ipv6]
        _four, six, summary = families.ip_lines(report.verdict, report.public_ipv6, report.ipv6_problem, holes)
        out.result(f"IPv6:        {six.removeprefix('IPv6: ')}")
        out.result(f"families:    {summary}")
    out.line("sources:")
    width = max((len(s.source) for s in report.sources), default=10)
    for s in report.sources:
        what = s.address or "-"
        status = "counted" if s.accepted else (s.note or s.error or "not counted")
        if s.address and not s.accepted and s.error:
            status = s.error
        out.line(f"  {s.source:<{width}}  IPv{s.family}  {what:<15}  {s.elapsed * 1000:6.0f} ms  {status}")
    log.debug("public IP checked at %s", time.strftime("%H:%M:%S", time.localtime(report.checked_at)))
    return 0 if ok else 1
