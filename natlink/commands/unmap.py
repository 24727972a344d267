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
        known = {m.name for m in cfg.mappings} | set(load_owned(store))
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
    ok = all(a.ok for a in actions)
    out.json({"ok": ok, "actions": [a.to_json() for a in actions]})
    deleted = sum(1 for a in actions if a.ok)
    out.result(f"ok: {deleted} mapping{'s' if deleted != 1 else ''} removed" if ok
               else f"failed: {len(actions) - deleted} of {len(actions)} could not be removed")
    return EXIT_OK if ok else EXIT_RUNTIME
