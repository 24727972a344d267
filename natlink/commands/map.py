"""natlink map — not implemented yet (issue 5)."""

from __future__ import annotations

import argparse

from natlink.errors import NotImplementedYet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print the plan (add / renew / replace / keep) and change nothing")


def run(ctx, args: argparse.Namespace) -> int:
    raise NotImplementedYet("map")
