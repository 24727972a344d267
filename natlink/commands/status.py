"""natlink status — not implemented yet (issue 8)."""

from __future__ import annotations

import argparse

from natlink.errors import NotImplementedYet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(ctx, args: argparse.Namespace) -> int:
    raise NotImplementedYet("status")
