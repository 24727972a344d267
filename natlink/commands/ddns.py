"""Push the current public IP to every [[ddns]] entry (or the named ones) — only when it changed.

Unchanged addresses cost no provider request; entries stopped by a fatal answer (badauth, abuse, ...)
stay stopped until their config changes or --force; transient failures back off. Exit 0 when every
entry is up to date, 1 when one failed or is backing off or stopped, 2 for a config/usage error."""

from __future__ import annotations

import argparse
import time

from natlink.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="update even when the address did not change, and "
                        "retry entries stopped by a fatal answer")
    parser.add_argument("names", nargs="*", metavar="NAME", help="[[ddns]] entry names (default: all)")


_ACTION_TEXT = {"update": "", "skip": "up to date", "wait": "waiting", "blocked": "STOPPED",
                "no-ip": "not updated", "error": "ERROR"}


def _label(action: str, kind: str) -> str:
    if action == "update":
        return {"success": "updated", "fatal": "STOPPED", "transient": "failed"}.get(kind, kind)
    return _ACTION_TEXT.get(action, action)


def _code(action: str, outcome: str) -> str:
    return "" if action == "skip" else f" [{outcome}]"


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.ddns.updater import select_entries, update_all
    from natlink.publicip import detect
    from natlink.state import StateStore

    cfg = ctx.config()
    if not cfg.ddns:
        from natlink.starter import example_config

        raise ConfigError(f"{cfg.path}: no [[ddns]] entries", f"add one (examples in {example_config()})")
    select_entries(cfg, args.names)  # an unknown name fails before the public IP is looked up
    out = ctx.out
    started = time.monotonic()
    store = StateStore(cfg.service.state_dir)
    report = detect(cfg, store=store)
    if report.public_ipv4 is None and report.problem:
        out.note(f"natlink: public IPv4 unknown ({report.problem}); DNS records are left as they are")
    elif report.verdict in ("cgnat", "double-nat"):
        out.note(f"natlink: warning: {report.problem}; the name will point at an address that does not reach you")
    results = update_all(cfg, store, report, force=args.force, names=args.names or None)
    ok = not any(r.failed or r.action in ("wait", "blocked") for r in results)
    out.json({"ok": ok, "public_ipv4": report.public_ipv4, "public_ipv6": report.public_ipv6,
              "verdict": report.verdict, "entries": [r.to_json() for r in results],
              "elapsed": round(time.monotonic() - started, 4)})
    for r in results:
        if len(r.hosts) > 1:  # several names: one line per name, each with its own outcome
            out.result(f"{r.name} ({r.provider}):")
            for h in r.hosts:
                answers = ", ".join(f"{fam} {code}" for fam, code in h.answers.items())
                out.result(f"  {h.hostname}: {_label(h.action, h.kind)}{_code(h.action, h.outcome)}"
                           f"{f' ({answers})' if len(h.answers) > 1 else ''} {h.message}")
        else:
            out.result(f"{r.name} ({r.provider}): {_label(r.action, r.kind)}{_code(r.action, r.outcome)} {r.message}")
        for drift in r.drift:
            out.result(f"{r.name}: drift: {drift}")
        if r.verify_problem:
            out.result(f"{r.name}: verification: {r.verify_problem}")
    return 0 if ok else 1
