"""State files: small JSON documents in service.state_dir, written atomically (a crash never leaves half a file)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from natlink.errors import NatlinkError


class StateStore:
    """One JSON file per key under a directory (e.g. "ddns-home.json", "router.json")."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str, default: Any = None) -> Any:
        try:
            return json.loads(self.path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return default
        except (OSError, ValueError):
            # A corrupt state file is not fatal: start over as if it were absent.
            return default

    def save(self, key: str, data: Any) -> None:
        """Write ``data`` (JSON types only: anything else raises TypeError before a file is touched, so an
        object that would be stringified — a Secret included — never reaches the disk)."""
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o750)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path(key))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise NatlinkError(f"cannot write state file {self.path(key)}: {exc.strerror or exc}",
                               "set service.state_dir to a writable directory") from None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob(f"{prefix}*.json"))
