"""The `natlink` command: global options, subcommands, and turning errors into one line and an exit code."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from natlink import __version__, cliparse
from natlink.errors import EXIT_RUNTIME, EXIT_USAGE, NatlinkError
from natlink.exiting import EXIT_PIPE, leave
from natlink.logsetup import setup_logging
from natlink.output import Output, silence_closed_pipes

if TYPE_CHECKING:
    from natlink.config import Config

log = logging.getLogger("natlink")

# subcommand -> (module in natlink.commands, one-line help). Modules keep heavy imports inside run().
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "write a starter config for this network (or --systemd: install the units)"),
    "check-config": ("check_config", "validate the config and print a summary"),
    "doctor": ("doctor", "walk the whole chain and name the first broken link with its fix"),
    "map": ("map", "create, renew or verify all configured port mappings now, checking each with the router"),
    "unmap": ("unmap", "remove natlink's own mappings (all, or the named ones)"),
    "mappings": ("mappings", "list the router's mapping table, marking natlink's own"),
    "ip": ("ip", "show the public IP, the router's WAN IP and the verdict (public / cgnat / double-nat)"),
    "ddns": ("ddns", "push the current public IP to the DDNS providers (only if it changed)"),
    "probe": ("probe", "check from outside that the mapped ports are reachable"),
    "run": ("run", "run the background service (mappings, DDNS, probes on a schedule and on events)"),
    "reload": ("reload", "make the running service re-read its config and wait for its verdict"),
    "status": ("status", "show the last known state of everything, from the state directory"),
    "alert": ("alert", "send a test alert through every configured channel (--test) and say which worked"),
    "reflector": ("reflector", "run the outside dial-back helper used by `natlink probe`"),
    "demo": ("demo", "run the whole chain on a simulated home network (root, Linux)"),
}


@dataclass
class Context:
    """What every subcommand gets: the output channel and a lazily loaded config."""

    out: Output
    config_path: str | None
    verbose: bool = False
    _config: "Config | None" = field(default=None, repr=False)

    def config(self, *, check_secrets: bool = True, defaults_ok: bool = False) -> "Config":
        """check_secrets=False: for commands that never use a secret (status, mappings), an unreadable
        secret file is not their problem. defaults_ok (a first look before `natlink init`): the defaults
        when there is no config file at all, said on stderr."""
        if self._config is None:
            from natlink.config import load_config

            config = load_config(self.config_path, check_secrets=check_secrets, defaults_ok=defaults_ok)
            if config.path is None:
                r = config.router
                self.out.note(f"natlink: no config file, so the defaults: lan_ip {r.lan_ip}, protocols "
                              f"{', '.join(r.protocols)}; nothing is saved (`natlink init` writes a config for this network)")
            if not check_secrets:
                return config
            self._config = config
        return self._config


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """On the top level with their help; on each subcommand too (`natlink map --json` works) but hidden from its
    help, which lists only that command's own options."""
    default = argparse.SUPPRESS if suppress else None

    def shown(text: str) -> str:
        return argparse.SUPPRESS if suppress else text

    parser.add_argument("-c", "--config", metavar="PATH", default=default,
                        help=shown("config file (default: $NATLINK_CONFIG, /etc/natlink/config.toml, "
                                   "~/.config/natlink/config.toml; `natlink init` writes one)"))
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help=shown("machine-readable output on stdout (errors too)"))
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help=shown("more detail; tracebacks for unexpected errors"))
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help=shown("only results and errors"))


def first_word(argv: Sequence[str]) -> str | None:
    """The word in the place of COMMAND in ``argv`` (skipping global options and the -c value), or None."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in ("-c", "--config"):
            skip = True
        elif not token.startswith("-"):
            return token
    return None


def invoked_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``, or None."""
    word = first_word(argv)
    return word if word in COMMANDS else None


def build_parser(command: str | None = None) -> cliparse.Parser:
    """The full parser; with ``command``, only that subcommand's module is imported and its arguments added
    (the others stay listed by name): importing all twelve command modules costs a start-up."""
    parser = cliparse.Parser(
        prog="natlink",
        description="Keep a home server reachable from the internet: router port mappings (UPnP IGD, NAT-PMP, "
                    "PCP) to a fixed LAN IP, DDNS that follows the public IP, and proof from outside. "
                    "Start with `natlink init`, then `natlink doctor`.",
        epilog=cliparse.epilog(None), formatter_class=cliparse.HelpFormatter)
    parser.add_argument("--version", action="version", version=f"natlink {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=cliparse.Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        if command is not None and name != command:
            sub.add_parser(name, help=help_text, add_help=False)  # only listed: it never parses this argv
            continue
        module = importlib.import_module(f"natlink.commands.{module_name}")
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip(),
                           epilog=cliparse.epilog(name), formatter_class=cliparse.HelpFormatter)
        _global_options(p, suppress=True)
        add = getattr(module, "add_arguments", None)
        if add is not None:
            add(p)
        p.set_defaults(_module=module)
    return parser




def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a reader that went away (`natlink ... | head`) ends it quietly with 141."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        silence_closed_pipes()  # Output already did for its own writes; argparse's help did not
        return EXIT_PIPE


def console() -> None:
    """The `natlink` command (and `python -m natlink`): main(), then natlink.exiting.leave."""
    leave(main())


def _main(argv: list[str]) -> int:
    command = invoked_command(argv)
    parser = build_parser(command)
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            raise cliparse.ArgError(f"unknown option or argument: {' '.join(extra)}", _subparser(parser, command),
                                    unknown=extra)
    except cliparse.ArgError as exc:
        word = first_word(argv)
        if exc.parser is parser and word is not None and word not in COMMANDS:  # argparse's "invalid choice"
            exc = cliparse.ArgError(f"no command {word!r}", parser, command=word)
        return _usage_error(exc, argv, parser)
    except SystemExit as exc:  # --help, --version: argparse printed them
        return int(exc.code or 0) if exc.code in (0, None) else EXIT_USAGE
    out = Output(json_mode=args.json, quiet=args.quiet, verbose=args.verbose)
    if args.command is None:
        if args.json:
            _report(out, "no command given", "no command given", "natlink --help lists them")
        else:
            parser.print_help(sys.stderr)
        return EXIT_USAGE
    setup_logging(verbose=args.verbose, quiet=args.quiet)
    ctx = Context(out=out, config_path=args.config, verbose=args.verbose)
    try:
        return int(args._module.run(ctx, args))
    except NatlinkError as exc:
        _report(out, str(exc), exc.message, exc.hint, getattr(exc, "problems", ()))
        if args.verbose:
            log.debug("details", exc_info=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("natlink: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # the reader went away: nothing to report to it (main ends quietly)
    except Exception as exc:  # a bug, not a user error: say so, traceback only with -v
        _report(out, f"internal error: {type(exc).__name__}: {exc}", f"internal error: {exc}",
                "run again with -v and report the traceback")
        if args.verbose:
            log.exception("traceback")
        else:
            print("natlink: run again with -v for the traceback", file=sys.stderr)
        return EXIT_RUNTIME


def _subparser(parser: cliparse.Parser, command: str | None) -> argparse.ArgumentParser:
    return parser.commands.get(command or "", parser)


def _usage_error(exc: cliparse.ArgError, argv: list[str], parser: argparse.ArgumentParser) -> int:
    """One line naming the mistake (and the close match), the usage of the command it was made in; JSON too."""
    message = exc.message + cliparse.suggestion(exc, list(COMMANDS))
    prog = exc.parser.prog
    hint = f"`{prog} --help` shows its options" if prog != "natlink" else "`natlink --help` lists the commands"
    out = Output(json_mode="--json" in argv)
    _err(f"{prog}: {message}")
    if not out.json_mode:
        print(exc.parser.format_usage().rstrip(), file=sys.stderr, flush=True)
    _err(f"{prog}: {hint}")
    out.json({"ok": False, "error": message, "hint": hint, "usage": exc.parser.format_usage().strip()})
    return EXIT_USAGE


def _err(text: str) -> None:
    """A line for a person on stderr (also with -q), wrapped to its terminal."""
    Output(stderr=sys.stderr).note(text)


def _report(out: Output, line: str, message: str, hint: str, problems: Sequence[str] = ()) -> None:
    """One line (or one per problem of a config), and under --json one document with the same facts."""
    if len(problems) > 1:
        _err(f"natlink: {message}:")
        for p in problems:
            _err(f"  {p}")
        if hint:
            _err(f"natlink: {hint}")
    else:
        _err(f"natlink: {line}")
    doc = {"ok": False, "error": message, "hint": hint or None}
    if problems:
        doc["problems"] = list(problems)
    out.json(doc)


if __name__ == "__main__":
    sys.exit(main())
