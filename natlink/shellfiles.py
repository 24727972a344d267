"""The man page and the bash/zsh completion scripts, generated from the same parser `natlink --help` uses, so
they can never describe options natlink does not have. Shipped in natlink/data (tests/unit/test_cli_shellfiles.py
checks they match the parser) and installed by `natlink init --shell`."""

from __future__ import annotations

import argparse
import datetime
import re
from dataclasses import dataclass

from natlink import __version__


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    description: str
    options: tuple[tuple[tuple[str, ...], str, str | None], ...]  # (option strings, help, metavar)


def commands(parser: argparse.ArgumentParser) -> tuple[list[tuple[tuple[str, ...], str, str | None]], list[Command]]:
    """PURE over the parser: the global options and each subcommand with its own (visible) options."""
    def opts(p: argparse.ArgumentParser) -> list[tuple[tuple[str, ...], str, str | None]]:
        return [(tuple(a.option_strings), a.help or "", a.metavar if a.nargs != 0 else None)
                for a in p._actions if a.option_strings and a.help is not argparse.SUPPRESS]

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help or "" for c in sub._choices_actions}
    cmds = [Command(name, helps.get(name, ""), p.description or "", tuple(opts(p))) for name, p in sub.choices.items()]
    return opts(parser), cmds


def _roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    # groff reads its input as Latin-1: anything beyond ASCII as a named or \[uXXXX] glyph
    text = "".join(c if ord(c) < 128 else {"—": "\\(em", "–": "\\(en", "→": "\\(->"}.get(c, f"\\[u{ord(c):04X}]")
                   for c in text)
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def manpage(parser: argparse.ArgumentParser) -> str:
    globals_, cmds = commands(parser)
    lines = [f'.TH NATLINK 1 "{datetime.date(2026, 1, 1):%B %Y}" "natlink {__version__}" "User Commands"',
             ".nh", ".ad l", ".SH NAME", "natlink \\- keep a home server reachable from the internet",
             ".SH SYNOPSIS", ".B natlink", "[\\fB\\-c\\fR \\fIPATH\\fR] [\\fB\\-\\-json\\fR] [\\fB\\-v\\fR] [\\fB\\-q\\fR]",
             "\\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
             ".SH DESCRIPTION", _roff(" ".join((parser.description or "").split())),
             ".SH GLOBAL OPTIONS"]
    for strings, help_text, metavar in globals_:
        lines += [".TP", "\\fB" + _roff(", ".join(strings)) + "\\fR" + (f" \\fI{_roff(metavar)}\\fR" if metavar else ""),
                  _roff(help_text)]
    lines.append(".SH COMMANDS")
    for c in cmds:
        lines += [".SS " + _roff(f"natlink {c.name}"), _roff(" ".join(c.description.split()) or c.help)]
        for strings, help_text, metavar in c.options:
            if "--help" in strings:
                continue
            lines += [".TP", "\\fB" + _roff(", ".join(strings)) + "\\fR" +
                      (f" \\fI{_roff(str(metavar))}\\fR" if metavar else ""), _roff(help_text)]
    lines += [".SH EXIT STATUS", "0 success; 1 a runtime problem or a failed check; 2 a usage or configuration error;",
              "each command's own list is in \\fBnatlink \\fICOMMAND\\fB \\-\\-help\\fR.",
              ".SH FILES", ".TP", "/etc/natlink/config.toml, ~/.config/natlink/config.toml",
              "the config (\\fBnatlink init\\fR writes one)",
              ".SH SEE ALSO", "\\fBupnpc\\fR(1), \\fBsystemctl\\fR(1)"]
    return "\n".join(lines) + "\n"


def bash_completion(parser: argparse.ArgumentParser) -> str:
    globals_, cmds = commands(parser)
    gl = " ".join(s for strings, _, _ in globals_ for s in strings)
    cases = "\n".join(f"        {c.name}) opts=\"{' '.join(s for st, _, _ in c.options for s in st)}\" ;;" for c in cmds)
    return f'''# bash completion for natlink (generated from its parser by natlink.shellfiles)
_natlink() {{
    local cur prev cmd opts i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    case "$prev" in
        -c|--config|--root|--token-file|--tls-cert|--tls-key) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
    esac
    cmd=""
    for (( i=1; i < COMP_CWORD; i++ )); do
        case "${{COMP_WORDS[i]}}" in
            -c|--config) (( i++ )) ;;
            -*) ;;
            *) cmd="${{COMP_WORDS[i]}}"; break ;;
        esac
    done
    if [[ -z "$cmd" ]]; then
        COMPREPLY=( $(compgen -W "{' '.join(c.name for c in cmds)} {gl}" -- "$cur") )
        return
    fi
    case "$cmd" in
{cases}
        *) opts="" ;;
    esac
    COMPREPLY=( $(compgen -W "$opts {gl}" -- "$cur") )
}}
complete -o default -F _natlink natlink
'''


def zsh_completion(parser: argparse.ArgumentParser) -> str:
    globals_, cmds = commands(parser)

    def spec(strings: tuple[str, ...], help_text: str, metavar: str | None) -> str:
        text = help_text.replace("'", "'\\''").replace("[", "(").replace("]", ")").replace(":", "\\:")
        arg = f":{metavar.lower()}:_files" if metavar in ("PATH", "DIR", "PEM") else (f":{metavar.lower()}:" if metavar else "")
        names = "{" + ",".join(strings) + "}" if len(strings) > 1 else strings[0]
        excl = "(" + " ".join(strings) + ")" if len(strings) > 1 else ""
        return f"'{excl}{names}[{text}]{arg}'"

    gl = " \\\n        ".join(spec(*o) for o in globals_ if "--help" not in o[0] and "--version" not in o[0])
    described = "\n".join(f"        '{c.name}:{c.help.replace(chr(39), '')}'" for c in cmds)
    cases = "\n".join(f"        {c.name}) _arguments {' '.join(spec(*o) for o in c.options if '--help' not in o[0])}"
                      f" && return ;;" for c in cmds)
    return f'''#compdef natlink
# zsh completion for natlink (generated from its parser by natlink.shellfiles)
_natlink() {{
    local -a commands
    commands=(
{described}
    )
    _arguments -C \\
        {gl} \\
        '1:command:->command' '*::options:->options'
    case $state in
    command) _describe -t commands 'natlink command' commands ;;
    options)
        case $words[1] in
{cases}
        esac ;;
    esac
}}
_natlink "$@"
'''


FILES = {"natlink.1": manpage, "completion/natlink.bash": bash_completion, "completion/_natlink": zsh_completion}
# shipped file -> where `natlink init --shell` installs it (below --root)
INSTALL = {"natlink.1": "/usr/local/share/man/man1/natlink.1",
           "completion/natlink.bash": "/usr/share/bash-completion/completions/natlink",
           "completion/_natlink": "/usr/local/share/zsh/site-functions/_natlink"}


def generate() -> dict[str, str]:
    from natlink.cli import build_parser

    parser = build_parser()
    return {name: fn(parser) for name, fn in FILES.items()}


if __name__ == "__main__":  # python3 -m natlink.shellfiles: regenerate natlink/data after changing an option
    from pathlib import Path

    data = Path(__file__).resolve().parent / "data"
    for name, text in generate().items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text(text, encoding="utf-8")
        print(f"wrote {data / name}")
