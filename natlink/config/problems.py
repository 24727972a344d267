"""Error collection while reading a config: every problem as `file:line: key: message`, unknown keys first,
reading stops after MAX_PROBLEMS; one ConfigError (exit 2) carries them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from natlink.config.locator import Locator
from natlink.errors import ConfigError


class Stop(Exception):
    """One table's validation stops at its first problem (recorded); the other tables go on."""


MAX_PROBLEMS = 20


class Loader:
    def __init__(self, path: Path | None, text: str, check_secrets: bool = True) -> None:
        self.path = path
        self.locator = Locator(text)
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
        raise Stop

    def guard(self, fn: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        """``fn(*args)``, or ``default`` when it stopped at a (recorded) problem."""
        try:
            return fn(*args)
        except Stop:
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
