"""Secrets come from a file, an environment variable or a systemd credential — never inline, never printed."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Secret:
    """A secret value whose str/repr never reveal it."""

    value: str = field(repr=False)
    source: str = ""  # where it came from, safe to show ("file /etc/natlink/token", "env NL_TOKEN")

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return f"Secret(<{self.source or 'hidden'}>)"


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


def world_readable(path: str | Path) -> bool:
    """True when a secret file can be read by users other than its owner and group."""
    try:
        return bool(Path(path).expanduser().stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


def redact(text: str, secrets: list[Secret]) -> str:
    """Replace every secret value in text by ***; used on anything that might echo a request."""
    for s in secrets:
        if s.value:
            text = text.replace(s.value, "***")
    return text
