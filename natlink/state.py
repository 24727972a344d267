"""State files: small JSON documents in service.state_dir, written atomically (a crash never leaves half a file)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
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

    def save(self, key: str, data: Any, *, durable: bool = True) -> None:
        """Write ``data`` (JSON types only: anything else raises TypeError before a file is touched, so an
        object that would be stringified — a Secret included — never reaches the disk).

        The temporary file is written and fsynced before the lock is taken: under heavy disk load an fsync can
        take seconds, and holding the lock meanwhile made every other writer (the service's jobs) wait.
        ``durable=False`` skips the fsync, for documents rewritten every few seconds anyway (health)."""
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o750)
            # what tempfile.mkstemp does (a fresh random name, exclusive, 0600, no symlink followed), without
            # importing tempfile (and shutil, random) into every command that writes a state file
            tmp = self.directory / f".{key}.{os.urandom(6).hex()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    if durable:
                        os.fsync(fh.fileno())
                with self.write_lock():
                    os.replace(tmp, self.path(key))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise NatlinkError(f"cannot write state file {self.path(key)}: {exc.strerror or exc}",
                               "set service.state_dir to a writable directory") from None

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """Writers in several processes (the service, `natlink ddns`, `natlink map`) take turns: an flock on the
        state directory itself, held for one write (or one read-modify-write). Readers need none: files are
        replaced whole."""
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def readable(self) -> None:
        """Raise NatlinkError (exit 1) when the directory exists but this user cannot read it: "no state" would
        then be a lie (e.g. DynamicUser=yes keeps /var/lib/private/natlink root-only)."""
        try:
            names = [n for n in os.listdir(self.directory) if n.endswith(".json") and not n.startswith(".")]
            for name in names:  # a readable directory of unreadable files (UMask=0077) is the same case
                with contextlib.suppress(FileNotFoundError), open(self.directory / name, "rb"):
                    pass
        except FileNotFoundError:
            return
        except PermissionError as exc:
            where = self._real() if exc.filename in (None, str(self.directory)) else exc.filename
            raise NatlinkError(f"cannot read {where}: permission denied",
                               "run with sudo (the service's state directory is readable only by it and root)",
                               exit_code=1) from None
        except OSError as exc:
            raise NatlinkError(f"cannot read {self._real()}: {exc.strerror or exc}", "check service.state_dir",
                               exit_code=1) from None

    def _real(self) -> str:
        """/var/lib/natlink is a symlink into /var/lib/private under DynamicUser=yes: name the real place."""
        try:
            return str(self.directory.resolve())
        except OSError:
            return str(self.directory)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob(f"{prefix}*.json"))


class InstanceLock:
    """One natlink service (or `run --once`) per state directory: an flock on <state_dir>/service.pid, held
    for the life of the process (the kernel drops it on any exit, kill -9 included); the file names the pid."""

    NAME = "service.pid"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory) / self.NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """NatlinkError (exit 1) naming the holder's pid when another process has it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise NatlinkError(f"cannot create {self.path}: {exc.strerror or exc}",
                               "set service.state_dir to a writable directory") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise NatlinkError(f"natlink is already running with state directory {self.path.parent}"
                               + (f", pid {pid}" if pid else ""),
                               "stop that one first (systemctl stop natlink), or give this one another "
                               "service.state_dir", exit_code=1) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def holder(self) -> int | None:
        """The pid holding the lock now, None when nobody does; raises OSError when the file cannot be read."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_pid(fd) or -1  # held, pid unknown
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class MemoryStore(StateStore):
    """The state of a first look without a config file (`natlink mappings`, `ip`, `doctor` before `natlink init`):
    such a run owns nothing, so it keeps what it learns for itself only and writes nothing to disk, not even
    into root's /var/lib/natlink. Same checks as StateStore.save (JSON types only)."""

    def __init__(self) -> None:
        super().__init__("(no state directory: no config file)")
        self._docs: dict[str, str] = {}

    def load(self, key: str, default: Any = None) -> Any:
        return json.loads(self._docs[key]) if key in self._docs else default

    def save(self, key: str, data: Any, *, durable: bool = True) -> None:
        self._docs[key] = json.dumps(data, sort_keys=True)

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        yield

    def readable(self) -> None:
        return None

    def delete(self, key: str) -> None:
        self._docs.pop(key, None)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self._docs if k.startswith(prefix))


def store_for(cfg: Any) -> StateStore:
    """The config's state directory; with no config file (Config.path None) a MemoryStore."""
    return MemoryStore() if getattr(cfg, "path", None) is None else StateStore(cfg.service.state_dir)
