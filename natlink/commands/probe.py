"""natlink probe — not implemented yet (issue 7)."""

from __future__ import annotations

import argparse

from natlink.errors import NotImplementedYet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="NAME|HOST:PORT", help="probe names, mapping names or host:port (default: every [[probe]])")


def run(ctx, args: argparse.Namespace) -> int:
    raise NotImplementedYet("probe")
