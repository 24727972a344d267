"""Write a starter config for this network to the standard place (/etc/natlink/config.toml as root,
~/.config/natlink/config.toml otherwise, or -c PATH): this host's LAN address, the router's gateway and which
of UPnP IGD, NAT-PMP and PCP answered, with commented examples. An existing file is never overwritten.

With --systemd: install natlink's systemd units (shipped inside the package) into /etc/systemd/system."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from natlink.errors import NatlinkError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--systemd", action="store_true",
                        help="install the systemd units into /etc/systemd/system instead of writing a config")
    parser.add_argument("--shell", action="store_true",
                        help="install the man page (man natlink) and the bash and zsh completion instead")
    parser.add_argument("--root", metavar="DIR", default="/",
                        help="write below DIR instead of / (for images and tests)")


def run(ctx, args: argparse.Namespace) -> int:
    root = Path(args.root)
    if args.systemd and args.shell:
        raise UsageError("--systemd and --shell are two separate steps", "run `natlink init --systemd` and "
                         "`natlink init --shell`")
    if args.systemd:
        return _install_units(ctx, root)
    if args.shell:
        return _install_shell_files(ctx, root)
    return _write_config(ctx, root)


def _below(root: Path, path: Path) -> Path:
    return root / path.relative_to(path.anchor) if root != Path("/") else path


def _write_config(ctx, root: Path) -> int:
    from natlink import starter
    from natlink.portmap.base import MAPPER_LABELS

    euid = os.geteuid()
    target = Path(ctx.config_path).expanduser() if ctx.config_path else _below(root, starter.default_config_path(euid))
    if target.exists() or target.is_symlink():
        raise UsageError(f"{target} already exists; natlink init never overwrites a config",
                         f"check it with `natlink -c {target} check-config`, or move it away and run init again")
    detected = detect()
    state_dir = None if euid == 0 else starter.default_state_dir(euid)
    text = starter.starter_config(detected, state_dir=state_dir)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as fh:  # "x": a file created meanwhile is not overwritten
            fh.write(text)
    except OSError as exc:
        raise NatlinkError(f"cannot write {target}: {exc.strerror or exc}",
                           "run as root (su - or sudo) for /etc/natlink, or give another place with -c PATH") from None
    out = ctx.out
    out.json({"ok": True, "config": str(target), "gateway": detected.gateway, "lan_ip": detected.lan_ip,
              "protocols_answered": list(detected.answered), "example": str(starter.example_config())})
    out.result(f"wrote {target}")
    out.line(f"  router {detected.gateway or 'not found'}, this host {detected.lan_ip or 'not found'}, answered: "
             + (", ".join(MAPPER_LABELS[p] for p in detected.answered) or "nothing"))
    out.line("next: add a [[mapping]] in it, then `natlink doctor`; every key is explained in "
             f"{starter.example_config()}")
    return 0


def detect():
    """Ask the network what `natlink init` fills in, with portmap's own discovery (one opener per protocol,
    all at once, so a silent one costs no more than the router timeout)."""
    from natlink import starter
    from natlink.config import RouterCfg
    from natlink.portmap import lanip
    from natlink.portmap.base import MAPPER_LABELS, NoRouter
    from natlink.portmap.router import open_router

    try:
        lan = lanip.resolve(None, "auto")
    except NatlinkError:
        return starter.Detected()

    def ask(mapper: str) -> tuple[str, str | None]:
        try:
            open_router(RouterCfg(protocols=(mapper,), gateway=lan.gateway), None).close()
            return mapper, None
        except NoRouter as exc:
            return mapper, exc.reasons.get(mapper, exc.message)
        except NatlinkError as exc:
            return mapper, exc.message

    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = dict(pool.map(ask, MAPPER_LABELS))
    return starter.Detected(gateway=lan.gateway, lan_ip=lan.lan_ip, lan_ip_dhcp=lanip.looks_dhcp(lan.lan_ip),
                            answered=tuple(p for p, why in answers.items() if why is None),
                            silent={p: why for p, why in answers.items() if why is not None})


def _install_units(ctx, root: Path) -> int:
    from natlink import starter

    target_dir = _below(root, Path("/etc/systemd/system"))
    binary = _natlink_binary()
    written, same = [], []
    plans = []
    for name in starter.UNITS:
        text = starter.unit_text(starter.data_file("systemd", name).read_text(encoding="utf-8"), binary)
        dest = target_dir / name
        if dest.exists():
            if dest.read_text(encoding="utf-8", errors="replace") == text:
                same.append(dest)
                continue
            raise UsageError(f"{dest} exists and differs from natlink's unit; nothing was installed",
                             f"compare it with {starter.data_file('systemd', name)} and remove it to reinstall "
                             "(local changes belong in `systemctl edit natlink`)")
        plans.append((dest, text))
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        for dest, text in plans:
            dest.write_text(text, encoding="utf-8")
            os.chmod(dest, 0o644)
            written.append(dest)
    except OSError as exc:
        raise NatlinkError(f"cannot write {target_dir}: {exc.strerror or exc}", "run as root (su - or sudo)") from None
    reloaded = False
    if root == Path("/") and written and shutil.which("systemctl"):
        reloaded = subprocess.run(["systemctl", "daemon-reload"], capture_output=True).returncode == 0
    out = ctx.out
    out.json({"ok": True, "installed": [str(p) for p in written], "unchanged": [str(p) for p in same],
              "exec": binary, "daemon_reload": reloaded})
    for p in written:
        out.result(f"installed {p}")
    for p in same:
        out.line(f"already installed: {p}")
    if binary != starter.UNIT_BINARY:
        out.line(f"  (the units run {binary}, where this natlink is installed)")
    config = starter.default_config_path(0)
    if not _below(root, config).exists():
        out.line(f"next: `natlink init` writes {config}, which the units read")
    out.line(("" if reloaded else "systemctl daemon-reload && ") + "systemctl enable --now natlink"
             "    # or natlink-oneshot.timer for one round every 5 min")
    return 0


def _install_shell_files(ctx, root: Path) -> int:
    """The man page and completions shipped in the package, copied where man, bash-completion and zsh look."""
    from natlink import shellfiles, starter

    installed = []
    try:
        for name, where in shellfiles.INSTALL.items():
            dest = _below(root, Path(where))
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(starter.data_file(*name.split("/")).read_bytes())
            os.chmod(dest, 0o644)
            installed.append(dest)
    except OSError as exc:
        raise NatlinkError(f"cannot install the shell files: {exc.strerror or exc}",
                           "run as root (su - or sudo)") from None
    ctx.out.json({"ok": True, "installed": [str(p) for p in installed]})
    for p in installed:
        ctx.out.result(f"installed {p}")
    if root == Path("/"):
        ctx.out.line("`man natlink` works now")
    for hint in shellfiles.enable_hints(_bashrc(), os.path.exists(_below(root, Path(shellfiles.BASH_COMPLETION)))):
        ctx.out.line(hint)
    return 0


def _bashrc() -> str | None:
    """The ~/.bashrc of whoever will use the completion: the user behind sudo, else this one."""
    import pwd

    try:
        home = pwd.getpwnam(os.environ["SUDO_USER"]).pw_dir if os.environ.get("SUDO_USER") else Path.home()
        return (Path(home) / ".bashrc").read_text(encoding="utf-8", errors="replace")
    except (KeyError, OSError, RuntimeError):
        return None


def _natlink_binary() -> str:
    """The natlink command the units should run: /usr/local/bin/natlink when it exists, else the natlink
    on PATH, else this Python with -m natlink (a unit must never name a program that is not there)."""
    from natlink import starter

    if os.path.exists(starter.UNIT_BINARY):
        return starter.UNIT_BINARY
    found = shutil.which("natlink")
    return os.path.abspath(found) if found else f"{sys.executable} -m natlink"
