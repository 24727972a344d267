"""The README's quick start, run as written on a fresh Debian 12 (tests/lab/fresh_debian.py): once as root (a
root-only Debian, `su -`), once through sudo as a user who may use it. The commands are read from the README's
own code blocks, so the README and this test cannot drift apart.

Each line of a block runs as it stands, in a login shell in the checkout. Lines that download (apt-get, pip) get
the host's network, as .ci/run and the rootfs build do; everything natlink runs (the demo, init, the checks) has
loopback only. `bash .ci/run` is not run here: it is the test suite that runs this test. Then what a new user
does next is checked the same way: `natlink --version`, `natlink init` (the config's place as root, as the user,
and with sudo), `natlink init --shell`, `man natlink`, and bash completion in the user's next shell."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import fresh_debian
import systemd_container as sc
from natlink import __version__

pytestmark = [pytest.mark.lab, pytest.mark.timeout(3000)]

REPO = Path(__file__).resolve().parents[2]
USER = fresh_debian.USER
DOWNLOAD_TIMEOUT = 900.0  # apt-get install (~150 MB) and pip's dependencies, on a cold download cache
NOT_RUN = ("bash .ci/run",)  # the suite itself


def quick_start_blocks(readme: str) -> tuple[list[str], list[str]]:
    """PURE: the command lines of the quick start's two sh blocks (as root, with sudo), comments removed."""
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2, f"the quick start should have two sh blocks (as root, with sudo), found {len(blocks)}"
    root, sudo = ([line.strip() for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
                  for block in blocks)
    return root, sudo


def downloads(line: str) -> bool:
    """PURE: a line that fetches packages (and runs no natlink command) gets the host's network."""
    runs_natlink = re.search(r"(^|&&|;|\bsudo)\s*natlink\b", line)
    return bool(re.search(r"\bapt-get\b|\bpip install\b", line)) and not runs_natlink


@pytest.fixture(scope="module")
def blocks() -> tuple[list[str], list[str]]:
    return quick_start_blocks((REPO / "README.md").read_text())


@pytest.fixture
def tools() -> None:
    sc.require_tools("fresh-Debian lab")


def test_the_blocks_say_the_same_as_root_and_with_sudo(blocks):
    root, sudo = blocks
    assert [re.sub(r"\bsudo ", "", line) for line in sudo] == root
    assert not any("sudo" in line for line in root), "the root block must work where there is no sudo"


def run_readme(machine: fresh_debian.Machine, lines: list[str], *, user: str, cwd: str) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for line in lines:
        if line in NOT_RUN or line.removeprefix("sudo ") in NOT_RUN:
            continue
        online = downloads(line)
        result = machine.sh(line, user=user, cwd=cwd, online=online,
                            timeout=DOWNLOAD_TIMEOUT if online else 600)
        assert result.returncode == 0, (f"README line {line!r} as {user} exited {result.returncode}:\n"
                                        f"{(result.stdout + result.stderr)[-4000:]}")
        seconds[line[:40]] = round(result.seconds, 1)  # type: ignore[attr-defined]
        if "natlink demo" in line:
            demo_output = result.stdout + result.stderr
            assert "next" in demo_output.lower() and "✗" not in demo_output, demo_output[-3000:]
    return seconds


def check_first_steps(machine: fresh_debian.Machine, *, sudo: str, user: str, cwd: str) -> str:
    """What the README says a user does after the install: all offline (loopback only). Returns what
    `natlink init --shell` said (one line)."""
    version = machine.ok("natlink --version", user=user)
    assert version.strip() == f"natlink {__version__}"
    # as root (or with sudo): the standard place; the example it names exists
    out = machine.ok(f"{sudo}natlink init", user=user, cwd=cwd)
    assert "wrote /etc/natlink/config.toml" in out, out
    example = re.search(r"explained in (\S+)", " ".join(out.split()))
    assert example, out
    machine.ok(f"test -f {example.group(1)}", user=user)
    again = machine.sh(f"{sudo}natlink init", user=user, cwd=cwd)
    assert again.returncode == 2 and "never overwrites" in again.stderr, again.stderr
    check = machine.sh(f"{sudo}natlink --json check-config", user=user, cwd=cwd)
    assert json.loads(check.stdout)["config"] == "/etc/natlink/config.toml", check.stdout
    # the man page and completion, installed as the README's service section says
    shell = machine.ok(f"{sudo}natlink init --shell", user=user, cwd=cwd)
    page = machine.ok("MANWIDTH=80 man natlink 2>&1 | col -b", user=user)
    assert "natlink" in page and "doctor" in page and "--dry-run" in page, page[:2000]
    return " ".join(shell.split())


def bash_completes(machine: fresh_debian.Machine, user: str) -> str:
    """What bash completion offers for `natlink ma<TAB>` in the user's next interactive shell."""
    script = ('source ~/.bashrc; _completion_loader natlink 2>/dev/null; '
              'COMP_WORDS=(natlink ma); COMP_CWORD=1; COMP_LINE="natlink ma"; COMP_POINT=10; '
              '"$(complete -p natlink 2>/dev/null | sed -E "s/.* -F ([^ ]+) .*/\\1/")" 2>/dev/null; '
              'echo "${COMPREPLY[*]}"')
    return machine.sh(f"bash -ic {sc._quote(script)}", user=user).stdout.strip()


def test_quick_start_as_root_on_a_debian_without_sudo(blocks, tools):
    root_lines, _ = blocks
    with fresh_debian.fresh_machine() as machine:
        assert machine.sh("command -v sudo").returncode != 0  # a root-only Debian, as the issue met it
        machine.copy_checkout("/root/natlink")
        seconds = run_readme(machine, root_lines, user="root", cwd="/root/natlink")
        said = check_first_steps(machine, sudo="", user="root", cwd="/root/natlink")
        # Debian's /root/.bashrc leaves bash-completion off: init --shell says so and what to add
        assert bash_completes(machine, "root") == ""
        line = re.search(r"bash: turn completion on in ~/.bashrc with `([^`]+)`", said)
        assert line, said
        machine.ok(f"echo {sc._quote(line.group(1))} >> ~/.bashrc")
        assert bash_completes(machine, "root") == "map mappings", "root's next shell completes natlink"
        print("\nreadme install as root, seconds per step:", json.dumps(seconds))


def test_quick_start_with_sudo_as_a_user(blocks, tools):
    _, sudo_lines = blocks
    with fresh_debian.fresh_machine() as machine:
        # what the Debian installer does when no root password is given: sudo, the first user in group sudo
        # (NOPASSWD stands in for typing the password)
        machine.ok("apt-get update -qq && apt-get install -y -qq sudo", online=True, timeout=DOWNLOAD_TIMEOUT)
        machine.ok(f"useradd -m -s /bin/bash -G sudo {USER} && echo '{USER} ALL=(ALL) NOPASSWD: ALL' "
                   f"> /etc/sudoers.d/{USER} && chmod 0440 /etc/sudoers.d/{USER}")
        home = f"/home/{USER}"
        machine.copy_checkout(f"{home}/natlink", owner=USER)
        seconds = run_readme(machine, sudo_lines, user=USER, cwd=f"{home}/natlink")
        said = check_first_steps(machine, sudo="sudo ", user=USER, cwd=f"{home}/natlink")
        assert "bash: completion starts with the next shell" in said, said  # Debian's user .bashrc has it on
        # without sudo the user's own config goes to ~/.config
        out = machine.ok("natlink init", user=USER)
        assert f"wrote {home}/.config/natlink/config.toml" in out, out
        assert bash_completes(machine, USER) == "map mappings"
        # pip's in-tree build (build/, natlink.egg-info) is root's, as the README says; nothing else may be
        owned = machine.ok(f"cd {home}/natlink && find . ! -user {USER} | grep -v -E '^./(build|natlink.egg-info)"
                           "(/|$)' | head -5", user="root")
        assert not owned, f"the install left files in the user's checkout that the user does not own: {owned}"
        print("\nreadme install with sudo, seconds per step:", json.dumps(seconds))
