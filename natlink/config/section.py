"""The section reader: one TOML table checked key by key (types, ranges, secrets, typos), each problem
recorded with its line by the Loader; and the small wording helpers config messages share."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import urlparse

from natlink import cleartext
from natlink.config.problems import Loader, Stop
from natlink.durations import parse_duration
from natlink.secrets import SecretRef, SecretUnavailable, credential_path, read_secret, warn_if_exposed

log = logging.getLogger(__name__)

SECRET_SUFFIXES = ("_file", "_env", "_credential")


class Section:
    """One TOML table being validated; remembers which keys were read to report unknown ones."""

    def __init__(self, loader: Loader, data: Any, path: str, known: Any = ()) -> None:
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
            match = close(name, known)
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
                    raise Stop
                self.loader.fail(self.key(name) if self.path else name,
                                 "is required", line_of=self.path or name)
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(name, f"expected {kind_name(kinds)}, got a boolean ({str(value).lower()})")
        if not isinstance(value, kinds):
            self.fail(name, f"expected {kind_name(kinds)}, got {toml_type(value)} ({shown(value)})")
        return value

    def string(self, name: str, default: str | None = None, *, required: bool = False,
               choices: tuple[str, ...] | None = None) -> str | None:
        value = self.get(name, str, default, required=required)
        if value is not None and choices is not None and value not in choices:
            self.fail(name, f"{shown(value)} is not one of {', '.join(choices)}" + did_you_mean(value, choices))
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
            self.fail(name, duration_problem(value, exc))
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
                self.fail(name, duration_problem(value, exc))
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
                self.fail(name, f"every item must be a string, got {toml_type(item)} ({shown(item)})")
        if nonempty and not value:
            self.fail(name, "must not be empty")
        return tuple(value)

    def secret(self, name: str, *, required: bool) -> SecretRef | None:
        """Secrets only via <name>_file, <name>_env or <name>_credential; inline is an error."""
        if self.has(name):
            self.used.add(name)
            self.fail(name, f"secrets must not be written in the config file; use {name}_file = \"/path\", "
                            f"{name}_env = \"VAR\" or {name}_credential = \"NAME\" (systemd LoadCredential)")
        given = [(suffix[1:], self.string(name + suffix)) for suffix in SECRET_SUFFIXES if self.has(name + suffix)]
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
            self.loader.note(self.key(name), "unknown key" + did_you_mean(name, sorted(known)), unknown=True)
        if unknown:
            raise Stop


def kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def toml_type(value: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def close(word: str, choices: Any) -> str | None:
    import difflib  # only for a config error's suggestion

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return match[0] if match else None


def did_you_mean(word: str, choices: Any) -> str:
    import difflib

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def keys(*classes: type, secrets: tuple[str, ...] = ()) -> set[str]:
    """The TOML keys of a section: its dataclass fields, and <secret>_file/_env/_credential."""
    from dataclasses import fields

    names = {f.name for c in classes for f in fields(c)}
    return (names - set(secrets)) | {k + suf for k in secrets for suf in SECRET_SUFFIXES}


def shown(value: Any, limit: int = 40) -> str:
    """A value as a message may quote it: repr, cut to ``limit`` characters (a 10 MB string is not echoed)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def duration_problem(value: Any, exc: ValueError) -> str:
    if len(repr(value)) <= 40:
        return str(exc)
    return f"{shown(value)} is not a duration (use e.g. \"90s\", \"10m\", \"1h\", \"2d\" or seconds)"


def tables(loader: Loader, data: Any, name: str, known: set[str]) -> list[Section]:
    """The sections of a [[name]] list; a malformed list or item is recorded and left out."""
    if isinstance(data, dict):
        loader.note(name, f"must be a list of tables: write [[{name}]], not [{name}]")
        return []
    if not isinstance(data, list):
        loader.note(name, f"must be a list of tables ([[{name}]])")
        return []
    sections = [loader.guard(Section, loader, item, f"{name}[{i}]", known) for i, item in enumerate(data)]
    return [s for s in sections if s is not None]
