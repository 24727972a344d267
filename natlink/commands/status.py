"""Show the last known state of everything, from the state directory: the service's health, each mapping
(present, lease left, last verified), the public IP and its verdict, each DDNS entry (published address,
last success, outcome, next attempt) and each probe's last verdict, each with how old it is. Asks nothing on
the network and reads no secret. A config that does not load is reported, and the state is shown anyway.

Exit 0 when the service runs and everything is healthy, 1 otherwise (including "the service is not running"
and "cannot read the state directory")."""

from __future__ import annotations

import argparse
import time

from natlink.errors import EXIT_OK, EXIT_RUNTIME, ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.config import find_config_path
    from natlink.service.statusview import fallback_state_dir, gather, render
    from natlink.state import StateStore

    cfg, error = None, None
    try:
        cfg = ctx.config(check_secrets=False)
        state_dir = cfg.service.state_dir
    except ConfigError as exc:
        path = find_config_path(ctx.config_path)
        if path is None or not path.is_file():
            raise  # no config at all: nothing tells where the state is
        error, state_dir = str(exc), fallback_state_dir(ctx.config_path)
    now = time.time()
    doc = gather(cfg, StateStore(state_dir), now, config_error=error)
    ctx.out.json(doc)
    for line in render(doc, now):
        ctx.out.result(line) if line.startswith(("overall", "service", "config")) else ctx.out.line(line)
    return EXIT_OK if doc["ok"] else EXIT_RUNTIME
