"""natlink ddns — not implemented yet (issue 6)."""

from __future__ import annotations

import argparse

from natlink.errors import NotImplementedYet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="update even when the address did not change")
    parser.add_argument("names", nargs="*", metavar="NAME", help="[[ddns]] entry names (default: all)")


def run(ctx, args: argparse.Namespace) -> int:
    raise NotImplementedYet("ddns")
