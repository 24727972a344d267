"""natlink demo — not implemented yet (issue 10)."""

from __future__ import annotations

import argparse

from natlink.errors import NotImplementedYet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up and print how to enter it")
    parser.add_argument("--down", action="store_true", help="tear down a sandbox left by --keep")


def run(ctx, args: argparse.Namespace) -> int:
    raise NotImplementedYet("demo")
