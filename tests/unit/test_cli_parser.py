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


def test_every_subcommand_has_its_shape_in_the_json_schema():
    """docs/json-schema.json names each command's document after the command (tests/lab/test_json_lab.py runs
    each one against it): a new subcommand without a shape fails here."""
    import json
    from pathlib import Path

    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" / "json-schema.json").read_text())
    shape_of = {"run": "run-once"}  # `natlink run` prints a document only with --once
    missing = [c for c in build_parser().commands if shape_of.get(c, c) not in schema["$defs"]]
    assert not missing, f"no shape in docs/json-schema.json for: {missing}"
