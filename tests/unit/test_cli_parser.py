"""The CLI builds only the invoked subcommand's parser (start-up), and still knows every command by name."""

from __future__ import annotations

import pytest

from natlink.cli import COMMANDS, build_parser, invoked_command


@pytest.mark.parametrize("argv,command", [
    (["map"], "map"),
    (["-c", "map", "--json", "unmap", "rdp"], "unmap"),  # a config file called "map" is not the command
    (["--config", "x.toml", "-v", "map", "--dry-run"], "map"),
    (["--config=x.toml", "status"], "status"),
    (["--json"], None),
    (["bogus"], None),
    ([], None),
])
def test_invoked_command(argv, command):
    assert invoked_command(argv) == command


def test_parser_for_one_command_parses_it_and_lists_the_others():
    parser = build_parser("map")
    args = parser.parse_args(["-c", "x.toml", "map", "--dry-run"])
    assert args.command == "map" and args.dry_run and args.config == "x.toml"
    assert set(COMMANDS) <= set(parser.format_help().replace(",", " ").replace("{", " ").replace("}", " ").split())
