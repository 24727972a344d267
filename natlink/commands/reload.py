"""Ask the running service to re-read its config (SIGHUP) and wait for its own verdict, from its health state.

Exit 0 when the service took the new config, 2 when it rejected it (it keeps running the old one; the reason is
printed), 1 when no verdict came (no service, not allowed to signal it, no answer in time). systemd's
`systemctl reload natlink` runs this (ExecReload=), so a rejected config fails the reload — a broken
LoadCredential= secret included, which only the service itself can read."""

from __future__ import annotations

import argparse
import os
import signal
import time
from typing import Any

from natlink.errors import EXIT_USAGE, NatlinkError

POLL = 0.1  # seconds between reads of the health state while waiting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pid", type=int, metavar="PID",
                        help="the service's process (default: the one its state names; systemd passes $MAINPID)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for the service's verdict (default: 10)")


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.service.health import STATE_KEY, pid_alive, reload_count, reload_verdict
    from natlink.state import StateStore

    # The service's secrets are not this command's business (and ExecReload= cannot read the credentials).
    cfg = ctx.config(check_secrets=False)
    store = StateStore(cfg.service.state_dir)
    store.readable()
    doc = store.load(STATE_KEY)
    pid = args.pid if args.pid is not None else (doc or {}).get("pid")
    where = f"the state in {cfg.service.state_dir}"
    if not isinstance(pid, int) or not doc or doc.get("mode") != "service" or not doc.get("running"):
        raise NatlinkError(f"no running natlink service recorded in {where}",
                           "start it (`systemctl start natlink` or `natlink run`), or pass the config it runs with (-c)")
    if doc.get("pid") != pid:
        raise NatlinkError(f"natlink pid {pid} is not the service recorded in {where} (pid {doc.get('pid')})",
                           "pass the config that service runs with (-c); service.state_dir changes only on restart")
    seen = reload_count(doc)
    _signal(pid)
    deadline = time.monotonic() + args.timeout
    while True:
        verdict = reload_verdict(store.load(STATE_KEY), pid, seen)
        if verdict is not None:
            return _report(ctx, pid, verdict)
        if not pid_alive(pid):
            raise NatlinkError(f"the natlink service (pid {pid}) ended before it judged the reload",
                               "journalctl -u natlink (or its log) says why")
        if time.monotonic() >= deadline:
            raise NatlinkError(f"the natlink service (pid {pid}) gave no verdict on the reload within "
                               f"{args.timeout:g}s; whether it took the new config is unverified",
                               "journalctl -u natlink (or its log) shows \"reloaded\" or \"reload rejected\"")
        time.sleep(POLL)


def _signal(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise NatlinkError(f"no process {pid}: the natlink service is not running",
                           "start it: systemctl start natlink") from None
    except PermissionError:
        raise NatlinkError(f"not allowed to signal the natlink service (pid {pid})",
                           "run as root or as the service's user (`systemctl reload natlink` does)") from None


def _report(ctx, pid: int, verdict: dict[str, Any]) -> int:
    if verdict.get("ok"):
        ctx.out.json({"ok": True, "pid": pid, "reload": verdict})
        ctx.out.result(f"natlink service (pid {pid}) reloaded its config")
        return 0
    raise NatlinkError(f"the natlink service (pid {pid}) rejected the new config and keeps running the old one: "
                       f"{verdict.get('error') or 'no reason recorded'}",
                       "fix the config (`natlink check-config`, and the secrets it names), then reload again",
                       exit_code=EXIT_USAGE)
