"""How natlink's command line looks and fails: help that re-flows to the terminal (80 columns when unknown), each
subcommand's own exit codes, and usage errors with close-match suggestions instead of argparse's exit."""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, NoReturn

from natlink.output import terminal_width

GENERIC_EXITS = (("0", "success; everything checked is healthy"),
                 ("1", "a runtime problem or a failed check"),
                 ("2", "usage or configuration error (the message names the file, line and key)"))
CONFIG_OR_USAGE = "a config or usage error (the message names the file, line and key)"
EXITS: dict[str, tuple[tuple[str, str], ...]] = {
    "init": (("0", "written (--systemd: installed)"), ("1", "the file or directory cannot be written"),
             ("2", "the config or a unit exists already and differs, or a usage error")),
    "check-config": (("0", "the config is valid"), ("2", "it is not (every problem is listed), or a usage error")),
    "doctor": (("0", "nothing is broken"), ("1", "a link is broken (the first one is named with its fix)"),
               ("2", CONFIG_OR_USAGE)),
    "map": (("0", "every mapping is in place"), ("1", "the router refused or is absent, or the address is CGNAT"),
            ("2", CONFIG_OR_USAGE)),
    "unmap": (("0", "natlink's mappings were removed"), ("1", "one could not be removed"),
              ("2", "no mapping by that name, or " + CONFIG_OR_USAGE)),
    "mappings": (("0", "the table was read"), ("1", "no router answered"), ("2", CONFIG_OR_USAGE)),
    "ip": (("0", "the address is public"), ("1", "CGNAT, double NAT or unknown"), ("2", CONFIG_OR_USAGE)),
    "ddns": (("0", "every entry is up to date"), ("1", "an entry failed, is waiting or is stopped"),
             ("2", CONFIG_OR_USAGE)),
    "probe": (("0", "every target was reached from outside"), ("1", "a target was not"), ("2", CONFIG_OR_USAGE)),
    "run": (("0", "stopped cleanly (--once: every job worked)"), ("1", "a job failed (--once), or it cannot start"),
            ("2", CONFIG_OR_USAGE)),
    "reload": (("0", "the service took the new config"),
               ("1", "no verdict: no running service, not allowed to signal it, or no answer in time"),
               ("2", "the service rejected the new config and keeps the old one (the reason is printed)")),
    "status": (("0", "the service runs and everything is healthy"), ("1", "otherwise, also when it is not running"),
               ("2", "a usage error")),
    "alert": (("0", "every channel worked"), ("1", "a channel failed"), ("2", CONFIG_OR_USAGE)),
    "reflector": (("0", "stopped by Ctrl-C or SIGTERM"), ("1", "it cannot listen on that address"),
                  ("2", "a usage error (--listen, --token-file, TLS files)")),
    "demo": (("0", "the whole chain worked"), ("1", "a link failed"),
             ("2", "it cannot run here (the line names what is missing and the fix)"), ("130", "interrupted")),
}
NO_CONFIG = ("reflector",)  # commands that never read the config


def epilog(command: str | None) -> str:
    codes = EXITS.get(command or "", GENERIC_EXITS)
    lines = ["exit codes:"] + [f"  {code:<3} {text}" for code, text in codes]
    if command is not None:
        globals_ = "--json, -v, -q" if command in NO_CONFIG else "-c PATH (the config), --json, -v, -q"
        lines += ["", f"Global options, before or after the command: {globals_} (see natlink --help)."]
    return "\n".join(lines)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions re-flowed to the width (docstrings are written at ~110 columns); indented lines (lists,
    exit codes) stay lines, wrapped under their text."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        # argparse's default, the terminal's width less 2, but without the shutil import it makes for it: a
        # parser builds a formatter for every option it adds, so every start paid for shutil (and bz2, lzma)
        if width is None:
            width = terminal_width(sys.__stdout__) - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    def _split_lines(self, text: str, width: int) -> list[str]:
        # argparse breaks "--tls-cert" after its hyphen; an option name or number+unit must stay whole
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        for para in re.split(r"\n\s*\n", text.strip("\n")):
            lines = para.splitlines()
            if lines and all(line.startswith(" ") for line in lines[1:]) and lines[0].rstrip().endswith(":"):
                out.append(lines[0])
                for line in lines[1:]:
                    lead = len(line) - len(line.lstrip())
                    m = re.match(r"\s*\S+\s+", line)
                    hang = len(m.group(0)) if m else lead
                    out.extend(textwrap.wrap(line.strip(), width - lead, initial_indent=" " * lead,
                                             subsequent_indent=" " * hang, break_on_hyphens=False,
                                             break_long_words=False) or [""])
            else:
                out.extend(textwrap.wrap(" ".join(s.strip() for s in lines), width, initial_indent=indent,
                                         subsequent_indent=indent, break_on_hyphens=False, break_long_words=False))
            out.append("")
        return "\n".join(out).rstrip("\n")


class ArgError(Exception):
    """A usage error found by argparse, with the parser that found it (for its usage line)."""

    def __init__(self, message: str, parser: Parser, *, unknown: Sequence[str] = (), command: str | None = None
                 ) -> None:
        super().__init__(message)
        self.message = message
        self.parser = parser
        self.unknown = tuple(unknown)  # the words no option or argument of ``parser`` took
        self.command = command  # a word where COMMAND goes that names no command


class Parser(argparse.ArgumentParser):
    """argparse that raises ArgError instead of printing and exiting, so natlink reports it its own way
    (one line, a suggestion, JSON under --json). It keeps its own list of what add_argument and add_subparsers
    returned, so nothing reads argparse's private _actions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.arguments: list[argparse.Action] = []  # before argparse's __init__: it adds -h/--help
        self.commands: dict[str, argparse.ArgumentParser] = {}  # the subcommands' parsers by name
        # No abbreviations: `--verbos` would silently run the command as `--verbose` (a router look and all);
        # a mistyped option is an error with a did-you-mean instead.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.arguments.append(action)
        return action

    def add_subparsers(self, **kwargs: Any) -> Any:
        subparsers = super().add_subparsers(**kwargs)
        self.commands = subparsers.choices  # the name -> parser map that add_parser fills
        return subparsers

    def error(self, message: str) -> NoReturn:
        raise ArgError(message, self)


def suggestion(exc: ArgError, commands: list[str]) -> str:
    """" (did you mean --dry-run?)" for an unknown option or command close to a real one, else ""."""
    import difflib  # only after a usage error: not worth its import on every start

    if exc.command is not None:
        match = difflib.get_close_matches(exc.command, commands, n=1, cutoff=0.6)
        return f" (did you mean `natlink {match[0]}`?)" if match else ""
    if exc.unknown and exc.unknown[0].startswith("-"):
        word = exc.unknown[0].split("=", 1)[0]
        # every option the parser takes, the global ones a subcommand repeats with their help suppressed too
        options = [o for a in exc.parser.arguments for o in a.option_strings]
        match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
        return f" (did you mean {match[0]}?)" if match else ""
    return ""
