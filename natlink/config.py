"""Read the TOML config and turn it into validated, typed settings in one place.

Every problem is reported as `file:line: key.path: what is wrong (how to fix it)`, exit code 2.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from natlink import cleartext
from natlink.ddns import registry
from natlink.durations import parse_duration
from natlink.errors import ConfigError
from natlink.secrets import SecretRef, SecretUnavailable, credential_path, read_secret, warn_if_exposed

log = logging.getLogger(__name__)

DEFAULT_PATHS = (Path("/etc/natlink/config.toml"), Path("~/.config/natlink/config.toml"))
PROTOCOLS = ("upnp", "natpmp", "pcp")
VIAS = ("reflector", "hairpin", "echoip")
PROBE_TIMEOUT_MAX = 60.0


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RouterCfg:
    protocols: tuple[str, ...] = PROTOCOLS
    gateway: str | None = None  # None: the default route's gateway
    igd_url: str | None = None  # None: SSDP discovery (result cached in state)
    lan_ip: str = "auto"  # "auto": source address toward the gateway
    lease: int = 3600
    timeout: float = 2.0  # how long to wait for a router before saying it is absent


@dataclass(frozen=True)
class MappingCfg:
    name: str
    protocol: str  # "tcp" | "udp"
    external_port: int
    internal_port: int
    internal_ip: str | None  # None: router.lan_ip resolved at run time ("auto")
    allow_other_port: bool = False  # accept another external port when the wanted one is taken
    lease: int | None = None  # None: router.lease
    description: str = ""
    ipv6: bool | None = None  # open an IPv6 pinhole too; None: public_ip.ipv6 (Config.mapping_ipv6)
    ipv6_host: str | None = None  # interface identifier of another LAN host ("::201", "mac:..."); None: this host


@dataclass(frozen=True)
class PublicIpCfg:
    sources: tuple[str, ...] = ("router", "https://api.ipify.org", "https://ipv4.icanhazip.com")
    ipv6: bool = False
    quorum: int = 0  # 0: all answering sources must agree; N: at least N agreeing sources
    timeout: float = 3.0


@dataclass(frozen=True)
class DdnsCfg:
    name: str
    provider: str
    hostnames: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)  # provider keys (server, zone, username, ttl, ...)
    secrets: dict[str, SecretRef] = field(default_factory=dict)  # e.g. {"password": SecretRef("file", ...)}
    ipv4: bool = True
    ipv6: bool = False
    keepalive: int | None = None  # seconds; None: provider default (0 = never)
    verify: bool = True
    line: int = 0
    allow_insecure_http: bool = False  # credentials may go to a non-loopback http:// server (warned every run)

    def config_hash_items(self) -> dict[str, Any]:
        """What, when changed, makes the next run push an update (no secret values, only their sources)."""
        return {
            "provider": self.provider, "hostnames": list(self.hostnames), "options": self.options,
            "secrets": {k: f"{v.kind}:{v.name}" for k, v in sorted(self.secrets.items())},
            "ipv4": self.ipv4, "ipv6": self.ipv6,
        }


@dataclass(frozen=True)
class ProbeCfg:
    name: str
    mapping: str | None  # a [[mapping]] name
    target: str | None  # "host:port" when not a mapping
    via: str
    reflector: str | None = None
    echoip: str | None = None
    token: SecretRef | None = None  # shared reflector token
    timeout: float = 3.0
    protocol: str = "tcp"
    allow_insecure_http: bool = False  # the token may go to a non-loopback http:// reflector (warned every run)


@dataclass(frozen=True)
class ScheduleCfg:
    mappings: int = 600
    ddns: int = 300
    probe: int = 900
    public_ip: int = 60  # cheap poll of the router's external address (events come first)
    jitter: int = 10


@dataclass(frozen=True)
class AlertsCfg:
    webhook: str | None = None
    command: tuple[str, ...] | None = None
    min_interval: int = 600
    heartbeat: str | None = None  # push URL (Healthchecks.io / Uptime Kuma): pinged while healthy, /fail when not


@dataclass(frozen=True)
class ServiceCfg:
    state_dir: str = "/var/lib/natlink"
    unmap_on_stop: bool = False
    metrics: str | None = None  # "127.0.0.1:9877"
    web: str | None = None  # status page, "127.0.0.1:9878" (natlink/web/)
    web_password: SecretRef | None = None  # required when web binds to a non-loopback address
    alerts: AlertsCfg = field(default_factory=AlertsCfg)
    hung_job: int = 300  # a job running longer is taken as hung: the watchdog pings stop and systemd restarts us


@dataclass(frozen=True)
class DoctorCfg:
    expected_connections: int = 1000
    nat_timeout_max: int = 600


@dataclass(frozen=True)
class Config:
    path: Path | None
    router: RouterCfg = field(default_factory=RouterCfg)
    mappings: tuple[MappingCfg, ...] = ()
    public_ip: PublicIpCfg = field(default_factory=PublicIpCfg)
    ddns: tuple[DdnsCfg, ...] = ()
    probes: tuple[ProbeCfg, ...] = ()
    schedule: ScheduleCfg = field(default_factory=ScheduleCfg)
    service: ServiceCfg = field(default_factory=ServiceCfg)
    doctor: DoctorCfg = field(default_factory=DoctorCfg)

    def mapping(self, name: str) -> MappingCfg | None:
        return next((m for m in self.mappings if m.name == name), None)

    def mapping_ipv6(self, m: MappingCfg) -> bool:
        """Does this mapping get an IPv6 pinhole? Its own ``ipv6``, else ``public_ip.ipv6``."""
        return self.public_ip.ipv6 if m.ipv6 is None else m.ipv6


# --------------------------------------------------------------------------- providers

# Which keys each DDNS provider takes lives in natlink/ddns/registry.py (one table for all providers).
_SECRET_SUFFIXES = ("_file", "_env", "_credential")


# --------------------------------------------------------------------------- line numbers


class _Locator:
    """Maps key paths like `mapping[0].external_port` to line numbers by scanning the TOML text."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        counts: dict[str, int] = {}
        prefix = ""
        for no, line in enumerate(text.splitlines(), 1):
            header = self._HEADER.match(line)
            if header:
                name = header.group(2).replace('"', "").replace("'", "").strip()
                if header.group(1) == "[[":
                    index = counts.get(name, 0)
                    counts[name] = index + 1
                    prefix = f"{name}[{index}]"
                else:
                    prefix = name
                self.lines.setdefault(prefix, no)
                continue
            key = self._KEY.match(line)
            if key:
                name = key.group(1).replace('"', "").replace("'", "")
                self.lines.setdefault(f"{prefix}.{name}" if prefix else name, no)

    def line(self, path: str) -> int:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rsplit(".", 1)[0] if "." in path else ""
        return 0


# --------------------------------------------------------------------------- validation helpers


class _Section:
    """One TOML table being validated; remembers which keys were read to report unknown ones."""

    def __init__(self, loader: "_Loader", data: Any, path: str, known: Any = ()) -> None:
        self.loader = loader
        self.path = path
        if not isinstance(data, dict):
            loader.fail(path, f"must be a table ([{path}]), not {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()
        self.typos: dict[str, str] = {}  # known key -> the mistyped key written instead
        self.expect(known)

    def expect(self, known: Any) -> None:
        """Report mistyped keys first: a key that is not ``known`` but close to one is a typo, whatever the
        checks after it would say (`external_prot` is not "external_port: is required")."""
        known = set(known)
        for name in self.data:
            if name in known or name in self.typos.values():
                continue
            match = _close(name, known)
            if match is not None:
                self.typos[match] = name
                self.used.add(name)
                self.loader.note(self.key(name), f"unknown key (did you mean {match!r}?)", unknown=True)

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, message: str) -> None:
        self.loader.fail(self.key(name), message)

    def raw(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def has(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        value = self.raw(name)
        if value is None:
            if required:
                if name in self.typos:  # already told: the typo is the problem
                    raise _Stop
                self.loader.fail(self.key(name) if self.path else name,
                                 "is required", line_of=self.path or name)
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(name, f"expected {_kind_name(kinds)}, got a boolean ({str(value).lower()})")
        if not isinstance(value, kinds):
            self.fail(name, f"expected {_kind_name(kinds)}, got {_toml_type(value)} ({shown(value)})")
        return value

    def string(self, name: str, default: str | None = None, *, required: bool = False,
               choices: tuple[str, ...] | None = None) -> str | None:
        value = self.get(name, str, default, required=required)
        if value is not None and choices is not None and value not in choices:
            self.fail(name, f"{shown(value)} is not one of {', '.join(choices)}" + _did_you_mean(value, choices))
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return self.get(name, bool, default)

    def port(self, name: str, *, required: bool = False) -> int | None:
        value = self.get(name, int, None, required=required)
        if value is not None and not 1 <= value <= 65535:
            self.fail(name, f"{value} is not a port (1-65535)")
        return value

    def duration(self, name: str, default: int | None) -> int | None:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(name, _duration_problem(value, exc))
        raise AssertionError  # unreachable

    def seconds(self, name: str, default: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
        if isinstance(value, str):
            try:
                parsed = parse_duration(value)
            except ValueError as exc:
                self.fail(name, _duration_problem(value, exc))
            if parsed > 0:
                return float(parsed)
        self.fail(name, f"{shown(value)} is not a positive number of seconds")
        raise AssertionError

    def ip(self, name: str, *, required: bool = False, allow_auto: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is None or (allow_auto and value == "auto"):
            return value
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            extra = ' or "auto"' if allow_auto else ""
            self.fail(name, f"{shown(value)} is not an IP address (e.g. \"10.0.1.201\"{extra})")
        raise AssertionError

    def url(self, name: str, *, required: bool = False, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
        value = self.string(name, required=required)
        if value is not None:
            parsed = urlparse(value)
            if parsed.scheme not in schemes or not parsed.hostname:
                self.fail(name, f"{shown(value)} is not a {'/'.join(schemes)} URL (e.g. \"{schemes[-1]}://host:port\")")
        return value

    def str_list(self, name: str, default: tuple[str, ...] | None = None, *, required: bool = False,
                 nonempty: bool = False) -> tuple[str, ...] | None:
        value = self.get(name, list, None, required=required)
        if value is None:
            return default
        for item in value:
            if not isinstance(item, str):
                self.fail(name, f"every item must be a string, got {_toml_type(item)} ({shown(item)})")
        if nonempty and not value:
            self.fail(name, "must not be empty")
        return tuple(value)

    def secret(self, name: str, *, required: bool) -> SecretRef | None:
        """Secrets only via <name>_file, <name>_env or <name>_credential; inline is an error."""
        if self.has(name):
            self.used.add(name)
            self.fail(name, f"secrets must not be written in the config file; use {name}_file = \"/path\", "
                            f"{name}_env = \"VAR\" or {name}_credential = \"NAME\" (systemd LoadCredential)")
        given = [(suffix[1:], self.string(name + suffix)) for suffix in _SECRET_SUFFIXES if self.has(name + suffix)]
        if len(given) > 1:
            self.fail(name + given[1][0], f"give only one of {name}_file, {name}_env, {name}_credential")
        if not given:
            if required:
                self.loader.fail(self.key(name + "_file"), f"is required (or {name}_env / {name}_credential)",
                                 line_of=self.path)
            return None
        kind, where = given[0]
        assert where is not None
        if kind == "file":
            where = str(self.loader.relative(where))
        ref = SecretRef(kind, where)
        key = name + "_" + kind
        if self.loader.check_secrets and (kind == "file" or (kind == "credential" and credential_path(where) is not None)):
            try:
                read_secret(ref)
            except SecretUnavailable as exc:
                self.fail(key, f"{exc.message} ({exc.hint})")
        if kind == "file":
            warn_if_exposed(where, self.key(key))
        return ref

    def no_cleartext(self, key: str, url: Any, what: str) -> bool:
        """Refuse a non-loopback http:// URL that would carry ``what`` unless the entry allows it (then warn)."""
        allow = self.boolean(cleartext.ALLOW_KEY, False)
        host = cleartext.cleartext_host(url) if isinstance(url, str) else None
        if host is not None:
            if not allow:
                self.fail(key, cleartext.refusal(what, url, host))
            log.warning(cleartext.warning(self.path, what, host))
        return allow

    def finish(self, extra_known: tuple[str, ...] = ()) -> None:
        known = self.used | set(extra_known)
        unknown = [name for name in self.data if name not in known]
        for name in unknown:
            self.loader.note(self.key(name), "unknown key" + _did_you_mean(name, sorted(known)), unknown=True)
        if unknown:
            raise _Stop


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _toml_type(value: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _close(word: str, choices: Any) -> str | None:
    import difflib  # only for a config error's suggestion

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return match[0] if match else None


def _did_you_mean(word: str, choices: Any) -> str:
    import difflib

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _keys(*classes: type, secrets: tuple[str, ...] = ()) -> set[str]:
    """The TOML keys of a section: its dataclass fields, and <secret>_file/_env/_credential."""
    from dataclasses import fields

    names = {f.name for c in classes for f in fields(c)}
    return (names - set(secrets)) | {k + suf for k in secrets for suf in _SECRET_SUFFIXES}


def shown(value: Any, limit: int = 40) -> str:
    """A value as a message may quote it: repr, cut to ``limit`` characters (a 10 MB string is not echoed)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _duration_problem(value: Any, exc: ValueError) -> str:
    if len(repr(value)) <= 40:
        return str(exc)
    return f"{shown(value)} is not a duration (use e.g. \"90s\", \"10m\", \"1h\", \"2d\" or seconds)"


class _Stop(Exception):
    """One table's validation stops at its first problem (recorded); the other tables go on."""


MAX_PROBLEMS = 20


class _Loader:
    def __init__(self, path: Path | None, text: str, check_secrets: bool = True) -> None:
        self.path = path
        self.locator = _Locator(text)
        self.problems: list[str] = []
        self.unknown: list[str] = []  # unknown / mistyped keys, reported first
        self.check_secrets = check_secrets  # False for commands that never use a secret (status, mappings)

    def relative(self, file: str) -> Path:
        p = Path(file).expanduser()
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p

    def note(self, key: str, message: str, *, line_of: str | None = None, unknown: bool = False) -> None:
        """Record one problem (unknown keys are listed first); past MAX_PROBLEMS, stop reading."""
        line = self.locator.line(line_of if line_of is not None else key)
        where = self.path.name if self.path else "config"
        key = key if len(key) <= 80 else key[:79] + "…"  # a key is a value too (it came from the file)
        text = f"{where}:{line}: {key}: {message}" if line else f"{where}: {key}: {message}"
        if text not in self.problems + self.unknown:
            (self.unknown if unknown else self.problems).append(text)
        if len(self.problems) + len(self.unknown) >= MAX_PROBLEMS:
            self.raise_problems()

    def fail(self, key: str, message: str, *, line_of: str | None = None) -> None:
        self.note(key, message, line_of=line_of)
        raise _Stop

    def guard(self, fn: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        """``fn(*args)``, or ``default`` when it stopped at a (recorded) problem."""
        try:
            return fn(*args)
        except _Stop:
            return default

    def failed_under(self, prefix: str) -> bool:
        return any(f": {prefix}" in p for p in self.problems + self.unknown)

    def raise_problems(self) -> None:
        found = self.unknown + self.problems
        if not found:
            return
        more = " (natlink stopped reading after that many)" if len(found) >= MAX_PROBLEMS else ""
        raise ConfigError(found[0] if len(found) == 1 else f"{len(found)} problems in the config{more}",
                          "fix them, then check again with `natlink check-config`" if len(found) > 1 else "",
                          problems=tuple(found))


# --------------------------------------------------------------------------- loading


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


def parse_config(text: str, path: Path | None = None, *, check_secrets: bool = True) -> Config:
    text = text.removeprefix("\ufeff")  # a byte-order mark (Notepad) is not a TOML error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = path.name if path else "config"
        raise ConfigError(f"{where}:{line.group(1) if line else 0}: not valid TOML: {exc}",
                          "fix the syntax (strings need quotes, tables are [name], lists of tables [[name]])") from None
    loader = _Loader(path, text, check_secrets)
    known_tables = ("router", "mapping", "public_ip", "ddns", "probe", "schedule", "service", "doctor")
    for name in data:
        if name not in known_tables:
            loader.note(name, "unknown section" + _did_you_mean(name, known_tables), unknown=True)

    def table(name: str, known: set[str]) -> _Section | None:
        return loader.guard(_Section, loader, data.get(name, {}), name, known)

    def section(fn: Callable[..., Any], name: str, known: set[str], default: Any, *extra: Any) -> Any:
        s = table(name, known)
        return default if s is None else loader.guard(fn, *extra, s, default=default)

    router = section(_router, "router", _keys(RouterCfg), RouterCfg())
    mappings = _mappings(loader, data.get("mapping", []), router)
    public_ip = section(_public_ip, "public_ip", _keys(PublicIpCfg), PublicIpCfg())
    ddns = _ddns_entries(loader, data.get("ddns", []))
    probes = _probes(loader, data.get("probe", []), mappings)
    schedule = section(_schedule, "schedule", _keys(ScheduleCfg), ScheduleCfg())
    service = section(_service, "service", _keys(ServiceCfg, secrets=("web_password",)), ServiceCfg(), loader)
    doctor = section(_doctor, "doctor", _keys(DoctorCfg), DoctorCfg())
    loader.raise_problems()
    return Config(path=path, router=router, mappings=mappings, public_ip=public_ip, ddns=ddns, probes=probes,
                  schedule=schedule, service=service, doctor=doctor)


def _router(s: _Section) -> RouterCfg:
    protocols = s.str_list("protocols", PROTOCOLS, nonempty=True)
    assert protocols is not None
    for p in protocols:
        if p not in PROTOCOLS:
            s.fail("protocols", f"{shown(p)} is not a protocol; use {', '.join(PROTOCOLS)}" + _did_you_mean(p, PROTOCOLS))
    if len(set(protocols)) != len(protocols):
        s.fail("protocols", "lists a protocol twice")
    cfg = RouterCfg(
        protocols=protocols,
        gateway=s.ip("gateway"),
        igd_url=s.url("igd_url"),
        lan_ip=s.ip("lan_ip", allow_auto=True) or "auto",
        lease=s.duration("lease", 3600) or 0,
        timeout=s.seconds("timeout", 2.0),
    )
    if cfg.lease > 604800:
        s.fail("lease", f"{cfg.lease} s is longer than routers accept (at most 7 days, \"7d\"); use 0 for permanent")
    s.finish()
    return cfg


def _tables(loader: _Loader, data: Any, name: str, known: set[str]) -> list[_Section]:
    """The sections of a [[name]] list; a malformed list or item is recorded and left out."""
    if isinstance(data, dict):
        loader.note(name, f"must be a list of tables: write [[{name}]], not [{name}]")
        return []
    if not isinstance(data, list):
        loader.note(name, f"must be a list of tables ([[{name}]])")
        return []
    sections = [loader.guard(_Section, loader, item, f"{name}[{i}]", known) for i, item in enumerate(data)]
    return [s for s in sections if s is not None]


def _name(s: _Section, seen: set[str], default: str | None = None, *, allow_target: bool = False) -> str:
    name = s.string("name", default, required=default is None)
    assert name is not None
    # A probe may be named after its host:port target ("[2001:db8::1]:443" included).
    pattern = r"[A-Za-z0-9\[][A-Za-z0-9_.:\[\]\-]{0,62}" if allow_target else r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}"
    if not re.fullmatch(pattern, name):
        s.fail("name", _name_problem(name, allow_target))
    if name in seen:
        s.fail("name", f"duplicate name {shown(name)}; every entry needs its own name")
    seen.add(name)
    return name


def _name_problem(name: str, allow_target: bool) -> str:
    """Names are ASCII: they end up in router descriptions ("natlink:NAME", which many routers mangle beyond
    ASCII), state file names and metric labels."""
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "-_." or (allow_target and c in ":[]")))})
    allowed = "ASCII letters a-z A-Z, digits 0-9, '-', '_' and '.'" + (", ':' '[' ']' (host:port)" if allow_target else "")
    if not name:
        return f"must not be empty; use {allowed}"
    if len(name) > 63:
        return f"{shown(name)} is {len(name)} characters long; at most 63 ({allowed})"
    if bad:
        return f"{shown(name)} contains {', '.join(repr(c) for c in bad[:5])}; use only {allowed} (e.g. {shown(_ascii(name))})"
    return f"{shown(name)} must start with a letter or digit; use {allowed}"


def _ascii(name: str) -> str:
    import unicodedata

    folded = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
    text = "".join(folded.get(c, c) for c in name)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", text).strip("-") or "home"


def _mappings(loader: _Loader, data: Any, router: RouterCfg) -> tuple[MappingCfg, ...]:
    names: set[str] = set()
    ports: dict[tuple[int, str], str] = {}
    found = [loader.guard(_mapping, s, names, ports, router) for s in _tables(loader, data, "mapping",
                                                                              _keys(MappingCfg))]
    return tuple(m for m in found if m is not None)


def _mapping(s: _Section, names: set[str], ports: dict[tuple[int, str], str], router: RouterCfg) -> MappingCfg:
    name = _name(s, names)
    protocol = (s.string("protocol", "tcp", choices=("tcp", "udp", "TCP", "UDP")) or "tcp").lower()
    external = s.port("external_port", required=True)
    internal = s.port("internal_port") or external
    assert external is not None and internal is not None
    if (external, protocol) in ports:
        s.fail("external_port", f"{protocol.upper()} {external} is already used by mapping {ports[(external, protocol)]!r}")
    ports[(external, protocol)] = name
    internal_ip = s.ip("internal_ip")
    if internal_ip is None and router.lan_ip != "auto":
        internal_ip = router.lan_ip
    lease = s.duration("lease", None)
    ipv6 = s.get("ipv6", bool, None)
    ipv6_host = s.string("ipv6_host")
    if ipv6_host is not None:
        from natlink.ipv6addr import interface_id

        try:
            ipv6_host = interface_id(ipv6_host)
        except ValueError as exc:
            s.fail("ipv6_host", f"{exc} (an interface identifier like \"::201\" or \"mac:52:54:00:12:34:56\")")
    m = MappingCfg(name=name, protocol=protocol, external_port=external, internal_port=internal,
                   internal_ip=internal_ip, allow_other_port=s.boolean("allow_other_port", False),
                   lease=lease, description=s.string("description", "") or "", ipv6=ipv6, ipv6_host=ipv6_host)
    s.finish()
    return m


def _public_ip(s: _Section) -> PublicIpCfg:
    sources = s.str_list("sources", PublicIpCfg.sources, nonempty=True)
    assert sources is not None
    for src in sources:
        if src == "router" or (src.startswith("interface:") and len(src) > len("interface:")):
            continue
        parsed = urlparse(src)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            s.fail("sources", f"{shown(src)} is not a source; use \"router\", \"interface:NAME\" or an http(s) echo URL")
    quorum = s.get("quorum", int, 0)
    if quorum < 0:
        s.fail("quorum", "must be 0 (all answering sources agree) or a positive count")
    cfg = PublicIpCfg(sources=sources, ipv6=s.boolean("ipv6", False), quorum=quorum,
                      timeout=s.seconds("timeout", 3.0))
    s.finish()
    return cfg


def _hostname_ok(name: str) -> bool:
    return bool(re.fullmatch(r"(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9\-_]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9\-_]{0,61}[A-Za-z0-9_])?\.?", name))


def _ddns_entries(loader: _Loader, data: Any) -> tuple[DdnsCfg, ...]:
    names: set[str] = set()
    known = _keys(DdnsCfg) - {"options", "secrets", "line"} | {cleartext.ALLOW_KEY}
    found = [loader.guard(_ddns_entry, loader, s, names) for s in _tables(loader, data, "ddns", known)]
    return tuple(e for e in found if e is not None)


def _ddns_entry(loader: _Loader, s: _Section, names: set[str]) -> DdnsCfg:
    name = _name(s, names)
    provider = s.string("provider", required=True)
    assert provider is not None
    schema = registry.get(provider)
    if schema is None:
        s.fail("provider", f"unknown provider {shown(provider)}; use one of {', '.join(registry.names())}"
               + _did_you_mean(provider, registry.names()))
    assert schema is not None
    s.expect(set(schema.options) | _keys(secrets=schema.secrets + schema.optional_secrets))
    hostnames = s.str_list("hostnames", required=True, nonempty=True)
    assert hostnames is not None
    for h in hostnames:
        if not _hostname_ok(h):
            s.fail("hostnames", f"{shown(h)} is not a valid DNS name")
    options: dict[str, Any] = {}
    for key in schema.options:
        value = s.raw(key)
        if value is None:
            if key in schema.required:
                loader.fail(s.key(key), f"is required for provider {shown(provider)}", line_of=s.path)
            continue
        options[key] = _provider_option(s, key, value, schema.choices.get(key))
    secrets: dict[str, SecretRef] = {}
    for key in schema.secrets + schema.optional_secrets:
        ref = s.secret(key, required=key in schema.secrets)
        if ref is not None:
            secrets[key] = ref
    known_secret_keys = tuple(k + suf for k in schema.secrets + schema.optional_secrets for suf in _SECRET_SUFFIXES)
    allow = s.no_cleartext("server", options.get("server") if secrets else None, f"the {provider} credentials")
    entry = DdnsCfg(name=name, provider=provider, hostnames=hostnames, options=options, secrets=secrets,
                    ipv4=s.boolean("ipv4", True), ipv6=s.boolean("ipv6", False),
                    keepalive=s.duration("keepalive", None), verify=s.boolean("verify", True),
                    line=loader.locator.line(s.path), allow_insecure_http=allow)
    if not entry.ipv4 and not entry.ipv6:
        s.fail("ipv4", "ipv4 and ipv6 are both false: this entry would never update anything")
    s.finish(known_secret_keys)
    return entry


def _provider_option(s: _Section, key: str, value: Any, choices: tuple[str, ...] | None = None) -> Any:
    validators: dict[str, Callable[[], Any]] = {
        "server": lambda: s.string(key),
        "port": lambda: s.port(key),
        "ttl": lambda: s.duration(key, None),
        "proxied": lambda: s.boolean(key, False),
        "tcp": lambda: s.boolean(key, False),
    }
    result = validators.get(key, lambda: s.string(key, choices=choices))()
    if key in ("server", "nameserver") and isinstance(result, str) and "://" not in result:
        try:
            ipaddress.ip_address(result)
        except ValueError:
            if not _hostname_ok(result.split(":")[0]):
                s.fail(key, f"{shown(result)} is neither an address, a host name nor a URL")
    return result


def _probes(loader: _Loader, data: Any, mappings: tuple[MappingCfg, ...]) -> tuple[ProbeCfg, ...]:
    names: set[str] = set()
    mapping_names = [m.name for m in mappings]
    known = _keys(ProbeCfg, secrets=("token",)) | {cleartext.ALLOW_KEY}
    found = [loader.guard(_probe, loader, s, names, mapping_names) for s in _tables(loader, data, "probe", known)]
    return tuple(p for p in found if p is not None)


def _probe(loader: _Loader, s: _Section, names: set[str], mapping_names: list[str]) -> ProbeCfg:
    mapping = s.string("mapping")
    target = s.string("target")
    if (mapping is None) == (target is None):
        loader.fail(s.path, "give either mapping = \"NAME\" or target = \"host:port\"")
    if mapping is not None and mapping not in mapping_names and not loader.failed_under("mapping["):
        s.fail("mapping", f"no [[mapping]] is named {shown(mapping)}" + _did_you_mean(mapping, mapping_names)
               if mapping_names else f"no [[mapping]] is named {shown(mapping)} (there are no mappings)")
    if target is not None and parse_target(target) is None:
        s.fail("target", f"{shown(target)} is not host:port (e.g. \"rdp.home.example:3390\", \"[2001:db8::1]:443\")")
    name = _name(s, names, default=mapping or target, allow_target=True)
    via = s.string("via", "reflector", choices=VIAS)
    reflector = s.url("reflector", required=via == "reflector")
    echoip = s.url("echoip", required=via == "echoip")
    token = s.secret("token", required=False)
    allow = s.no_cleartext("reflector", reflector if token is not None else None, "the reflector token")
    timeout = s.seconds("timeout", 3.0)
    if timeout > PROBE_TIMEOUT_MAX:  # the checker's HTTP request gets this plus 3 s: far under the job's hang limit
        s.fail("timeout", f"{timeout:g} s is longer than a probe may wait (at most {PROBE_TIMEOUT_MAX:g} s)")
    probe = ProbeCfg(name=name, mapping=mapping, target=target, via=via or "reflector", reflector=reflector,
                     echoip=echoip, token=token, timeout=timeout,
                     protocol=(s.string("protocol", "tcp", choices=("tcp", "udp")) or "tcp"),
                     allow_insecure_http=allow)
    s.finish()
    return probe


def parse_target(text: str) -> tuple[str, int] | None:
    """"host:port" or "[v6]:port" -> (host, port); None when malformed."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\s\[\]]+):(\d{1,5})", text)
    if not m:
        return None
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return (host, int(port)) if 1 <= int(port) <= 65535 else None


def _schedule(s: _Section) -> ScheduleCfg:
    # One rule for every job key: 0 means never (the job does not run at all, not even on events).
    d = ScheduleCfg()
    cfg = ScheduleCfg(mappings=s.duration("mappings", d.mappings) or 0,
                      ddns=s.duration("ddns", d.ddns) or 0,
                      probe=s.duration("probe", d.probe) or 0,
                      public_ip=s.duration("public_ip", d.public_ip) or 0,
                      jitter=s.duration("jitter", d.jitter) or 0)
    if 0 < cfg.ddns < 30:
        s.fail("ddns", f"{cfg.ddns} s is too often; providers ban clients that poll that fast (use at least \"30s\")")
    s.finish()
    return cfg


def _service(loader: _Loader, s: _Section) -> ServiceCfg:
    metrics = s.string("metrics")
    if metrics is not None and parse_target(metrics) is None:
        s.fail("metrics", f"{shown(metrics)} is not ADDR:PORT (e.g. \"127.0.0.1:9877\")")
    web, web_password = _web(s)
    alerts_data = s.raw("alerts")
    alerts = AlertsCfg()
    if alerts_data is not None:
        a = _Section(loader, alerts_data, "service.alerts", _keys(AlertsCfg))
        command = a.str_list("command", nonempty=True)
        alerts = AlertsCfg(webhook=a.url("webhook"), command=command,
                           min_interval=a.duration("min_interval", 600) or 0, heartbeat=a.url("heartbeat"))
        a.finish()
    state_dir = s.string("state_dir", None)
    if state_dir is None:
        state_dir = default_state_dir(loader.path)
    hung_job = s.duration("hung_job", ServiceCfg.hung_job) or 0
    if hung_job < 1:
        s.fail("hung_job", "must be at least 1s (a job running longer counts as hung); the default is 5m")
    cfg = ServiceCfg(state_dir=str(loader.relative(state_dir)), unmap_on_stop=s.boolean("unmap_on_stop", False),
                     metrics=metrics, web=web, web_password=web_password, alerts=alerts, hung_job=hung_job)
    s.finish()
    return cfg


def _web(s: _Section) -> tuple[str | None, SecretRef | None]:
    """service.web and its password: an open page on a LAN is an attack surface, so a non-loopback bind
    needs web_password_file/_env/_credential."""
    web = s.string("web")
    password = s.secret("web_password", required=False)
    target = parse_target(web) if web is not None else None
    if web is not None and target is None:
        s.fail("web", f"{shown(web)} is not ADDR:PORT (e.g. \"127.0.0.1:9878\")")
    if target is not None and password is None and not _loopback(target[0]):
        s.fail("web", f"{shown(web)} is reachable from other hosts; set web_password_file = \"/path\" (or "
                      "web_password_env / web_password_credential), or bind to 127.0.0.1")
    return web, password


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def default_state_dir(config_path: Path | None) -> str:
    """$STATE_DIRECTORY (systemd), else for a user with a config in ~/.config/natlink (not root)
    $XDG_STATE_HOME/natlink (default ~/.local/state/natlink), else /var/lib/natlink."""
    systemd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd:
        return systemd
    if config_path is not None and os.geteuid() != 0:
        home = Path.home()
        user_config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "natlink"
        try:
            mine = config_path.expanduser().resolve().is_relative_to(user_config.resolve())
        except OSError:
            mine = False
        if mine:
            return str(Path(os.environ.get("XDG_STATE_HOME") or home / ".local" / "state") / "natlink")
    return ServiceCfg.state_dir


def _doctor(s: _Section) -> DoctorCfg:
    d = DoctorCfg()
    expected = s.get("expected_connections", int, d.expected_connections)
    if expected < 1:
        s.fail("expected_connections", "must be at least 1")
    nat_timeout_max = s.duration("nat_timeout_max", d.nat_timeout_max)
    if not nat_timeout_max:
        s.fail("nat_timeout_max", "must be more than 0 (how long the NAT timeout test may wait, e.g. \"10m\")")
    cfg = DoctorCfg(expected_connections=expected, nat_timeout_max=nat_timeout_max or d.nat_timeout_max)
    s.finish()
    return cfg
