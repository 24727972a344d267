"""Run the background service: keep the port mappings, DDNS and probes up to date on a schedule, and act at
once when the router announces a new address or a restart. SIGHUP reloads the config, SIGTERM stops.

With --once: one round (mappings, public IP + DDNS, probe) and exit — for systemd timers or cron."""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger("natlink.service")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true",
                        help="run every job once and exit (exit 1 if any failed); for timers and cron")
    parser.add_argument("--no-events", action="store_true",
                        help="do not listen for router announcements or address changes (polling only)")


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.service.runner import Service

    service = Service(ctx.config(), once=args.once, events=not args.no_events)
    code = service.run()
    busy = service.busy_jobs()
    if busy:
        # A job stuck in a network timeout must not hold up the stop (systemd expects it within seconds);
        # its state writes are atomic, so abandoning it loses nothing.
        log.warning("exiting while %s still running", ", ".join(busy))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
