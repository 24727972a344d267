"""Secrets come from a file, an environment variable or a systemd credential — never inline, never printed."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

log = logging.getLogger(__name__)


class Secret:
    """A secret value that no generic serialiser can open.

    Not a dataclass on purpose: dataclasses.asdict() refuses it, and asdict() of a dataclass holding one
    keeps this opaque object (copies return self); str/repr show only where it came from; json.dumps
    and pickle raise TypeError; there is no __dict__ for vars(). Code that needs the value asks .value.
    """

    __slots__ = ("_value", "_source")

    def __init__(self, value: str, source: str = "") -> None:
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_source", source)

    @property
    def value(self) -> str:
        return self._value

    @property
    def source(self) -> str:
        """Where it came from, safe to show ("file /etc/natlink/token", "environment variable NL_TOKEN")."""
        return self._source

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("a Secret cannot be changed")

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return f"Secret(<{self._source or 'hidden'}>)"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # here: hmac pulls in OpenSSL's hashlib, and every command imports this module

        return other._source == self._source and hmac.compare_digest(other._value.encode(), self._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._source))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class SecretRef:
    """Where to read a secret from; resolved only when needed."""

    kind: str  # "file" | "env" | "credential"
    name: str

    def describe(self) -> str:
        return {"file": "file", "env": "environment variable", "credential": "systemd credential"}[self.kind] + f" {self.name}"


class SecretUnavailable(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def credential_path(name: str) -> Path | None:
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    return Path(directory) / name if directory else None


def read_secret(ref: SecretRef) -> Secret:
    """Read the secret; raise SecretUnavailable naming the source (never the value)."""
    if ref.kind == "env":
        value = os.environ.get(ref.name)
        if not value:
            raise SecretUnavailable(f"environment variable {ref.name} is not set or empty",
                                    f"export {ref.name}=… or use a *_file key instead")
        return Secret(value.strip(), ref.describe())
    if ref.kind == "credential":
        path = credential_path(ref.name)
        if path is None:
            raise SecretUnavailable(f"systemd credential {ref.name}: $CREDENTIALS_DIRECTORY is not set",
                                    f"add LoadCredential={ref.name}:/path/to/secret to the service unit")
    else:
        path = Path(ref.name).expanduser()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretUnavailable(f"cannot read secret file {path}: {exc.strerror or exc}",
                                "check the path and its permissions (readable by the natlink user)") from None
    if not value:
        raise SecretUnavailable(f"secret file {path} is empty", "put the secret in it")
    return Secret(value, ref.describe())


def exposed_mode(path: str | Path) -> int | None:
    """The permission bits of a secret file when its group or other users can read it, else None."""
    try:
        mode = Path(path).expanduser().stat().st_mode
    except OSError:
        return None
    return stat.S_IMODE(mode) if mode & (stat.S_IRGRP | stat.S_IROTH) else None


def warn_if_exposed(path: str | Path, what: str) -> bool:
    """Log one warning when a secret file is readable beyond its owner; the one check every secret file gets
    (DDNS *_file keys, TSIG key files, probe and reflector tokens). True when it warned."""
    mode = exposed_mode(path)
    if mode is None:
        return False
    who = "every user" if mode & stat.S_IROTH else "its group"
    log.warning("%s: secret file %s is readable by %s (mode %04o); chmod 600 %s (or use a systemd credential)",
                what, path, who, mode, path)
    return True


def redact(text: str, secrets: list[Secret]) -> str:
    """Replace every secret value in text by ***; used on anything that might echo a request."""
    for s in secrets:
        if s.value:
            text = text.replace(s.value, "***")
    return text
