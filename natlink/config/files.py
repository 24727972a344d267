"""Where the config file is and reading it safely: -c PATH, $NATLINK_CONFIG or the standard places; what
cannot be a config (a directory, a FIFO, over 1 MiB, not UTF-8) is refused with one line."""

from __future__ import annotations

import os
from pathlib import Path

from natlink.config.model import Config, ServiceCfg
from natlink.config.parse import parse_config
from natlink.errors import ConfigError

DEFAULT_PATHS = (Path("/etc/natlink/config.toml"), Path("~/.config/natlink/config.toml"))


def find_config_path(explicit: str | None) -> Path | None:
    """-c PATH, else $NATLINK_CONFIG, else /etc/natlink/config.toml, else ~/.config/natlink/config.toml."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("NATLINK_CONFIG")
    if env:
        return Path(env).expanduser()
    for candidate in DEFAULT_PATHS:
        candidate = candidate.expanduser()
        if candidate.exists():
            return candidate
    return None


def load_config(explicit: str | None = None, *, check_secrets: bool = True, defaults_ok: bool = False) -> Config:
    """The config from -c PATH, $NATLINK_CONFIG or the standard places. With ``defaults_ok`` (a first look:
    mappings, ip, doctor) no file at all gives the defaults (Config.path None) instead of an error."""
    path = find_config_path(explicit)
    if path is None:
        if defaults_ok:
            return default_config()
        tried = " and ".join(str(p) for p in DEFAULT_PATHS)
        raise ConfigError(f"no config file (there is none at {tried})",
                          "`natlink init` writes one for this network, or pass -c PATH")
    return parse_config(read_config_text(path), path, check_secrets=check_secrets)


def default_config() -> Config:
    """What natlink uses with no config file: lan_ip auto, every protocol, no mappings; state in the system
    directory as root and in the user's own otherwise (a user cannot write /var/lib/natlink)."""
    from natlink.starter import default_state_dir

    euid = os.geteuid() if hasattr(os, "geteuid") else 0
    state_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0] or default_state_dir(euid)
    return Config(path=None, service=ServiceCfg(state_dir=state_dir))


MAX_CONFIG_BYTES = 1 << 20  # a config is a few KiB; more is a wrong file (a log, a disk image, /dev/zero)


def read_config_text(path: Path) -> str:
    """The file's text, refusing what cannot be a config (a directory, a FIFO or device, over 1 MiB) with one
    line instead of blocking or reading forever; a UTF-8 byte-order mark (Notepad) is accepted."""
    import stat

    try:
        st = path.stat()
    except FileNotFoundError:
        how = "with -c" if os.environ.get("NATLINK_CONFIG") is None else "in $NATLINK_CONFIG"
        raise ConfigError(f"config file {path} does not exist", f"check the path given {how}, or create it "
                          f"with `natlink -c {path} init`") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}", "check its permissions") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a pipe" if stat.S_ISFIFO(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
        raise ConfigError(f"config file {path} is {kind}, not a file", "give the path of a .toml file with -c") from None
    if st.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is {st.st_size / (1 << 20):.1f} MiB; a config is at most 1 MiB",
                          "check that -c names the config, not another file") from None
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}", "check its permissions") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is over 1 MiB", "check that -c names the config, not another file")
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start + 1})",
                          "save it as UTF-8 (any editor can; on Windows choose \"UTF-8\" in Save As)") from None
