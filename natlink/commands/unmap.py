"""natlink unmap — not implemented yet (issue 5)."""

from __future__ import annotations

import argparse

from natlink.errors import NotImplementedYet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="mapping names (default: all of natlink's own)")


def run(ctx, args: argparse.Namespace) -> int:
    raise NotImplementedYet("unmap")
