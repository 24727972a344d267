"""natlink reflector — not implemented yet (issue 7)."""

from __future__ import annotations

import argparse

from natlink.errors import NotImplementedYet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="ADDR:PORT", required=True, help="address and port to serve on, e.g. 0.0.0.0:8765")


def run(ctx, args: argparse.Namespace) -> int:
    raise NotImplementedYet("reflector")
