"""Remove natlink's own mappings (all, or the named ones).

Only entries natlink made (description "natlink:<name>", recorded in its state) that point at this host are
deleted; other clients' mappings are never touched.
"""

from __future__ import annotations

import argparse
import sys

from natlink.errors import EXIT_OK, EXIT_RUNTIME, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="mapping names (default: all of natlink's own)")


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.commands.map import fmt_mapping
    from natlink.portmap.reconcile import load_owned, unmap
    from natlink.state import StateStore

    cfg = ctx.config()
    out = ctx.out
    store = StateStore(cfg.service.state_dir)
    names = list(args.names or [])
    if names:
        from natlink.portmap import pinhole

        known = {m.name for m in cfg.mappings} | set(load_owned(store)) | set(pinhole.load_owned(store))
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(f"no mapping named {', '.join(map(repr, unknown))}",
                             f"use one of: {', '.join(sorted(known)) or '(none configured)'}")
    actions = unmap(cfg, store, names or None)
    for a in actions:
        m = a.step.have
        if a.ok:
            out.line(f"  deleted  {a.name:<14} {fmt_mapping(m)}")
        else:
            err = a.error
            print(f"natlink: {a.name}: {err.message if err else a.detail}{' — ' + err.hint if err and err.hint else ''}",
                  file=sys.stderr, flush=True)
    from natlink.commands.map_ipv6 import unmap_pinholes

    v6 = unmap_pinholes(ctx, cfg, store, names or None)
    ok = all(a.ok for a in actions) and v6.ok
    out.json({"ok": ok, "actions": [a.to_json() for a in actions], "ipv6": v6.to_json()})
    deleted = sum(1 for a in actions if a.ok)
    holes = sum(1 for o in v6.outcomes if o.ok)
    extra = f", {holes} IPv6 pinhole{'s' if holes != 1 else ''} closed" if v6.outcomes else ""
    failed = len(actions) - deleted + len(v6.outcomes) - holes
    out.result(f"ok: {deleted} mapping{'s' if deleted != 1 else ''} removed{extra}" if ok
               else f"failed: {failed} of {len(actions) + len(v6.outcomes)} could not be removed")
    return EXIT_OK if ok else EXIT_RUNTIME
