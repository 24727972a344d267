"""natlink doctor — not implemented yet (issue 9)."""

from __future__ import annotations

import argparse

from natlink.errors import NotImplementedYet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(ctx, args: argparse.Namespace) -> int:
    raise NotImplementedYet("doctor")
