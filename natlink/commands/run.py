"""Run the background service: keep the port mappings, DDNS and probes up to date on a schedule, and act at
once when the router announces a new address or a restart. SIGHUP reloads the config, SIGTERM stops.
One service per state directory: a second one exits 1 naming the pid of the first.
With [service] web = "127.0.0.1:9878" it also serves a live status page ("check now", "update now").

With --once: one round (mappings, public IP + DDNS, probe), a summary of what it did (--json: one document),
exit 0 when everything is healthy, 1 otherwise — for systemd timers or cron."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from natlink.errors import EXIT_OK, EXIT_RUNTIME

log = logging.getLogger("natlink.service")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true",
                        help="run every job once, print what was done and exit (1 if anything is unhealthy); "
                             "for timers and cron")
    parser.add_argument("--no-events", action="store_true",
                        help="do not listen for router announcements or address changes (polling only)")


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.service.runner import Service

    service = Service(ctx.config(), once=args.once, events=not args.no_events)
    code = service.run()
    if args.once:
        from natlink.service.summary import document, lines

        doc = document(service.round, service.round.get("results", {}), str(service.cfg.service.state_dir))
        ctx.out.json(doc)
        for line in lines(doc):
            ctx.out.result(line)
        return EXIT_OK if doc["ok"] else EXIT_RUNTIME
    if service.busy_jobs():
        # A job stuck in a network timeout must not hold up the stop past TimeoutStopSec; the shutdown's one
        # line already named it, and its state writes are atomic, so abandoning it loses nothing.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
