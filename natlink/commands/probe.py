"""Check from outside that the mapped ports are reachable: a real TCP connect from a reflector
(`natlink reflector` on an outside machine) or an echoip-style checker, or a hairpin check from inside.

Verdicts: verified (natlink proved the outside reached this host), open, refused, timeout, unreachable,
checker-error, cgnat — each with one sentence naming the broken link. Exit 0 when every target is
verified or open, 1 otherwise; --json prints the verdict objects.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="NAME|HOST:PORT",
                        help="probe names, mapping names or host:port (default: every [[probe]])")
    parser.add_argument("--no-listen", action="store_true",
                        help="do not listen on free internal ports with a nonce (identity then stays unproven)")
    parser.add_argument("--save", action="store_true", help="store the results in the state directory (\"probe\")")


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.probe.prober import probe_all, results_to_state
    from natlink.probe.verdicts import exit_code

    cfg = ctx.config()
    results = probe_all(cfg, args.targets or None, listen=not args.no_listen)
    code = exit_code(results)
    if args.save:
        from natlink.state import StateStore

        StateStore(cfg.service.state_dir).save("probe", results_to_state(results))
    ctx.out.json({"ok": code == 0, "results": [r.to_json() for r in results]})
    width = max((len(r.name) for r in results), default=4)
    for r in results:
        ctx.out.result(f"{r.name:<{width}}  {r.family}  {r.target:<21} {r.verdict.value:<13} {r.elapsed:6.2f}s")
        ctx.out.result(f"{'':<{width}}  {r.detail}")
    if code and not results:
        ctx.out.note("natlink: nothing was probed")
    return code
