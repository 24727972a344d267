"""The man page and completion scripts shipped in the package are the ones the parser generates now (no option
that natlink lacks, none missing), the man page renders without warnings, and bash completes commands and each
command's own options in a real bash; zsh parses its script."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from natlink import shellfiles, starter

REPO = Path(__file__).resolve().parents[2]


def test_shipped_files_match_the_parser() -> None:
    """The generators are dev tools (the test extras pin them: another version writes other bytes)."""
    for module in ("shtab", "argparse_manpage"):
        try:
            __import__(module)
        except ImportError:
            pytest.fail(f"{module} is needed to check the shipped files: pip install '.[test]'")
    for name, text in shellfiles.generate().items():
        assert starter.data_file(*name.split("/")).read_text() == text, \
            f"{name} is stale: run `python3 -m natlink.shellfiles`"


def test_man_page_renders_without_warnings() -> None:
    page = starter.data_file("natlink.1")
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == ""
    text = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True,
                          env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"}).stdout
    for word in ("natlink init", "--systemd", "natlink doctor", "--measure-nat-timeout", "EXIT STATUS"):
        assert word in text


def complete(line: str) -> list[str]:
    """What bash's completion offers for ``line`` (the cursor at its end), with the shipped script."""
    words = line.split(" ")
    script = (f"source {starter.data_file('completion', 'natlink.bash')}\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
              # the function the script registered for natlink (shtab names it _shtab_natlink)
              "$(complete -p natlink | sed -E 's/.* -F ([^ ]+) .*/\\1/'); printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, check=True)
    return r.stdout.split()


@pytest.mark.parametrize("line,offered,not_offered", [
    ("natlink ma", {"map", "mappings"}, {"doctor"}),
    ("natlink map --d", {"--dry-run"}, {"--measure-nat-timeout"}),
    ("natlink -c x.toml doctor --me", {"--measure-nat-timeout"}, set()),
    ("natlink init --s", {"--systemd", "--shell"}, set()),
    ("natlink demo --scenario c", {"cgnat-ipv6"}, set()),
])
def test_bash_completes_commands_and_their_own_options(line: str, offered: set, not_offered: set) -> None:
    got = set(complete(line))
    assert offered <= got and not (not_offered & got), got


def test_zsh_parses_its_completion() -> None:
    if shutil.which("zsh") is None:
        pytest.fail("zsh is needed to check the zsh completion (apt-get install zsh)")
    r = subprocess.run(["zsh", "-n", str(starter.data_file("completion", "_natlink"))], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_enable_hints_say_what_is_left_for_bash_and_zsh():
    from natlink.shellfiles import BASH_COMPLETION, enable_hints

    debian_root = "# ~/.bashrc: executed by bash(1) for non-login shells.\nexport LS_OPTIONS='--color=auto'\n"
    skel = f"if ! shopt -oq posix; then\n  if [ -f {BASH_COMPLETION} ]; then\n    . {BASH_COMPLETION}\n"
    assert enable_hints(skel, True)[0] == "bash: completion starts with the next shell"
    assert f"`. {BASH_COMPLETION}`" in enable_hints(debian_root, True)[0]
    assert f"`. {BASH_COMPLETION}`" in enable_hints(None, True)[0]
    assert "apt-get install bash-completion" in enable_hints(skel, False)[0]
    assert "compinit" in enable_hints(skel, True)[1]
