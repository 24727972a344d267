"""Send a test alert through every configured channel ([service.alerts] webhook, command, and a success ping
to heartbeat) and say which worked. The alert has the same JSON shape as real ones, with event "test".

Exit 0 when every channel worked, 1 when one failed or none is configured."""

from __future__ import annotations

import argparse
import socket

from natlink.errors import EXIT_OK, EXIT_RUNTIME, NatlinkError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--test", action="store_true", required=True,
                        help="send a test alert now (required: alerts are otherwise sent only by the service)")


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.service.alerts import Alert, Alerter, ping_heartbeat

    cfg = ctx.config(check_secrets=False).service.alerts
    alerter = Alerter(cfg, {})
    if not alerter.channels():
        raise NatlinkError("no alert channel is configured",
                           "set webhook, command or heartbeat under [service.alerts]", exit_code=1)
    alert = Alert("test", "service", f"test alert from natlink on {socket.gethostname()}: this channel works",
                  "nothing to do")
    results = alerter.deliver(alert)
    if cfg.heartbeat:
        results[alerter.channels()[-1]] = ping_heartbeat(cfg.heartbeat, True, "natlink: test ping")
    ok = all(problem is None for problem in results.values())
    ctx.out.json({"ok": ok, "alert": alert.to_json(),
                  "channels": [{"channel": c, "ok": p is None, "problem": p} for c, p in results.items()]})
    for channel, problem in results.items():
        ctx.out.result(f"{channel}: {'ok' if problem is None else 'FAILED: ' + problem}")
    return EXIT_OK if ok else EXIT_RUNTIME
