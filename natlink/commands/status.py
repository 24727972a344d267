"""Show the last known state of everything, from the state directory: the service's health, each mapping
(present, lease left, last verified), the public IP and its verdict, each DDNS entry (published address,
last success, outcome, next attempt) and each probe's last verdict. Asks nothing on the network.

Exit 0 when the service runs and everything is healthy, 1 otherwise (including "the service is not running")."""

from __future__ import annotations

import argparse
import time

from natlink.errors import EXIT_OK, EXIT_RUNTIME


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.service.statusview import gather, render
    from natlink.state import StateStore

    cfg = ctx.config()
    now = time.time()
    doc = gather(cfg, StateStore(cfg.service.state_dir), now)
    ctx.out.json(doc)
    for line in render(doc, now):
        ctx.out.result(line) if line.startswith(("overall", "service")) else ctx.out.line(line)
    return EXIT_OK if doc["ok"] else EXIT_RUNTIME
