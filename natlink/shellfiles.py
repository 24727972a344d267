"""The man page and the bash/zsh completion scripts, generated from the same parser `natlink --help` uses, so
they can never describe options natlink does not have: the man page by argparse-manpage, the completions by
shtab (both well-kept; dev tools only, pinned in the test extras: the generated files are compared byte for
byte). Shipped in natlink/data (tests/unit/test_cli_shellfiles.py checks they match the parser) and installed
by `natlink init --shell`; an installed natlink needs neither library."""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import TYPE_CHECKING

from natlink import __version__

if TYPE_CHECKING:
    from natlink.cliparse import Parser

DATE = "January 2026"  # fixed, so the shipped page only changes when the parser does
# What the parser cannot say, after argparse-manpage's sections (its --include format: a line starting with "/"
# would be a heading there, hence the \& before a path).
EXTRA_SECTIONS = """[>EXIT STATUS]
0 success; 1 a runtime problem or a failed check; 2 a usage or configuration error; each command's own list is
in \\fBnatlink \\fICOMMAND\\fB \\-\\-help\\fR.

[>FILES]
.TP
\\&/etc/natlink/config.toml, ~/.config/natlink/config.toml
the config (\\fBnatlink init\\fR writes one)

[>SEE ALSO]
\\fBupnpc\\fR(1), \\fBsystemctl\\fR(1)
"""


def manpage(parser: argparse.ArgumentParser) -> str:
    from argparse_manpage.manpage import Manpage

    parser.epilog = None  # the exit codes are EXIT STATUS below, not a "COMMENTS" section
    with tempfile.NamedTemporaryFile("w", suffix=".man", delete=False) as extra:
        extra.write(EXTRA_SECTIONS)
    try:
        page = Manpage(parser, _data={"project_name": "natlink", "version": __version__, "date": DATE,
                                      "manual_title": "User Commands", "include": extra.name,
                                      "description": "keep a home server reachable from the internet"})
        return _glyphs(str(page))
    finally:
        os.unlink(extra.name)


def _glyphs(text: str) -> str:
    """groff reads its input as Latin-1: anything beyond ASCII as a named or \\[uXXXX] glyph."""
    named = {"—": "\\(em", "–": "\\(en", "→": "\\(->"}
    return "".join(c if ord(c) < 128 else named.get(c, f"\\[u{ord(c):04X}]") for c in text)


def _completion(parser: argparse.ArgumentParser, shell: str) -> str:
    import shtab

    return shtab.complete(parser, shell=shell)


def bash_completion(parser: argparse.ArgumentParser) -> str:
    return _completion(parser, "bash")


def zsh_completion(parser: argparse.ArgumentParser) -> str:
    return _completion(parser, "zsh")


FILES = {"natlink.1": manpage, "completion/natlink.bash": bash_completion, "completion/_natlink": zsh_completion}
# shipped file -> where `natlink init --shell` installs it (below --root)
INSTALL = {"natlink.1": "/usr/local/share/man/man1/natlink.1",
           "completion/natlink.bash": "/usr/share/bash-completion/completions/natlink",
           "completion/_natlink": "/usr/local/share/zsh/site-functions/_natlink"}


BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


def enable_hints(bashrc: str | None, have_bash_completion: bool) -> list[str]:
    """PURE: what the user still has to do for completion, from their ~/.bashrc (None: none) and whether the
    bash-completion package is there. Debian's skeleton .bashrc turns bash-completion on for users; root's
    .bashrc does not, so a root shell never loads natlink's completion until it is turned on."""
    if not have_bash_completion:
        bash = "bash: completion needs the bash-completion package (apt-get install bash-completion)"
    elif bashrc is None or "bash_completion" not in bashrc:
        bash = f"bash: turn completion on in ~/.bashrc with `. {BASH_COMPLETION}`, then open a new shell"
    else:
        bash = "bash: completion starts with the next shell"
    return [bash, "zsh: completion starts with the next shell that runs compinit "
                  "(`autoload -Uz compinit && compinit` in ~/.zshrc)"]


# shtab's completers for options that take a path, by their metavar (shtab reads an action's `complete`)
COMPLETE_BY_METAVAR = {"PATH": {"bash": "_shtab_compgen_files", "zsh": "_files"},
                       "PEM": {"bash": "_shtab_compgen_files", "zsh": "_files"},
                       "DIR": {"bash": "_shtab_compgen_dirs", "zsh": "_files -/"}}


def _parser() -> Parser:
    """natlink's full parser, its path options marked for shtab."""
    from natlink.cli import build_parser

    parser = build_parser()
    for p in [parser, *parser.commands.values()]:
        for action in p.arguments:
            if action.metavar in COMPLETE_BY_METAVAR:
                action.complete = COMPLETE_BY_METAVAR[action.metavar]  # type: ignore[attr-defined]
    return parser


def generate() -> dict[str, str]:
    """Every shipped file's text, at 80 columns whatever the terminal (argparse wraps usage to COLUMNS)."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        return {name: fn(_parser()) for name, fn in FILES.items()}
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


if __name__ == "__main__":  # python3 -m natlink.shellfiles: regenerate natlink/data after changing an option
    from pathlib import Path

    data = Path(__file__).resolve().parent / "data"
    for name, text in generate().items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text(text, encoding="utf-8")
        print(f"wrote {data / name}")
