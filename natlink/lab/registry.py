"""Who owns which lab: a record per lab under /run/natlink-lab-owners/<tag>/ so killed runs can be tidied.

natlink removes only what it can prove it created. A lab's namespaces are named with a prefix no
person would pick, and its record (written atomically *before* any namespace exists) names the
owning process by PID, start time, PID namespace and boot. Cleanup removes a lab only when its
record exists and its owner is provably dead; a namespace that merely looks like ours, a record
it cannot read, or an owner in another PID namespace or boot is left alone and reported.

The registry root and the prefix differ from natlink's earlier ones (/run/natlink-lab, ``nl-``) on
purpose: code of both generations may run on one machine and must not judge each other's labs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from enum import Enum

from natlink.lab.netns import delete_netns, list_netns
from natlink.lab.procs import pid_alive, pid_starttime

log = logging.getLogger(__name__)

REGISTRY_ROOT = "/run/natlink-lab-owners"
NS_PREFIX = "natlink-lab-"
HOST_NAMES = ("lan", "lan2", "rtr", "wan")  # the only namespace names a lab creates: NS_PREFIX<tag>-<host>
TAG_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")
TAG_MAX = 8


def valid_tag(tag: str) -> bool:
    return 1 <= len(tag) <= TAG_MAX and set(tag) <= TAG_CHARS


@dataclass(frozen=True)
class Here:
    """Where a judgement is made: owners can only be judged by someone in the same PID namespace and boot."""

    pidns: int | None  # inode of the PID namespace /proc shows; None when /proc is not ours
    boot_id: str | None


@dataclass(frozen=True)
class SeenProcess:
    """What /proc says about the record's PID right now (None start time: no such process)."""

    alive: bool
    starttime: int | None


@dataclass(frozen=True)
class OwnerRecord:
    tag: str
    pid: int
    starttime: int | None
    workdir: str
    pidns: int | None = None
    boot_id: str | None = None
    kept: bool = False  # left up on purpose (`natlink demo --keep`): never stale, only destroyed by asking


class Owner(Enum):
    ALIVE = "alive"
    DEAD = "dead"
    KEPT = "kept"
    UNPROVEN = "unproven"  # owner in another PID namespace or boot: we cannot see it, so we do not judge it


def judge(record: OwnerRecord, here: Here, seen: SeenProcess) -> Owner:
    """Is the owner of ``record`` provably dead? Only then may its lab be removed."""
    if record.kept:
        return Owner.KEPT
    if here.pidns is None or record.pidns != here.pidns:
        return Owner.UNPROVEN
    if record.boot_id is None or record.boot_id != here.boot_id:
        return Owner.UNPROVEN
    if not seen.alive:
        return Owner.DEAD
    if record.starttime is None or seen.starttime is None:
        return Owner.ALIVE  # a live PID whose start time we cannot compare: assume it is the owner
    return Owner.ALIVE if seen.starttime == record.starttime else Owner.DEAD  # PID reused by another process


def ns_name(tag: str, host: str) -> str:
    return f"{NS_PREFIX}{tag}-{host}"


def lab_ns_names(tag: str) -> list[str]:
    return [ns_name(tag, h) for h in HOST_NAMES]


def tag_of_ns(name: str) -> str | None:
    """The tag of a name shaped like one of ours (``natlink-lab-<tag>-<host>``), else None."""
    if not name.startswith(NS_PREFIX):
        return None
    tag, sep, host = name[len(NS_PREFIX) :].partition("-")
    return tag if sep and host in HOST_NAMES and valid_tag(tag) else None


# ---------------------------------------------------------------------- I/O at the edges


def here() -> Here:
    pidns = None
    with contextlib.suppress(OSError):
        if os.readlink("/proc/self") == str(os.getpid()):  # else /proc belongs to another PID namespace
            pidns = os.stat("/proc/self/ns/pid").st_ino
    boot_id = None
    with contextlib.suppress(OSError):
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot_id = fh.read().strip() or None
    return Here(pidns=pidns, boot_id=boot_id)


def seen_process(pid: int) -> SeenProcess:
    return SeenProcess(alive=pid_alive(pid), starttime=pid_starttime(pid))


def owner_state(record: OwnerRecord) -> Owner:
    return judge(record, here(), seen_process(record.pid))


def record_dir(tag: str) -> str:
    return os.path.join(REGISTRY_ROOT, tag)


def claim(tag: str, workdir: str) -> OwnerRecord:
    """Create the record for a new lab, atomically (a record directory never exists without its
    owner file); raises FileExistsError if the tag is already taken."""
    os.makedirs(REGISTRY_ROOT, exist_ok=True)
    pid = os.getpid()
    where = here()
    record = OwnerRecord(tag=tag, pid=pid, starttime=pid_starttime(pid), workdir=workdir,
                         pidns=where.pidns, boot_id=where.boot_id)
    tmp = os.path.join(REGISTRY_ROOT, f".{tag}.{pid}.tmp")
    os.mkdir(tmp)
    try:
        _write_owner(tmp, record)
        if os.path.exists(record_dir(tag)):
            raise FileExistsError(errno.EEXIST, "lab tag taken", record_dir(tag))
        os.rename(tmp, record_dir(tag))  # fails with ENOTEMPTY if another claim won the race
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, FileExistsError) or exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise FileExistsError(errno.EEXIST, "lab tag taken", record_dir(tag)) from exc
        raise
    return record


def _write_owner(directory: str, record: OwnerRecord) -> None:
    tmp = os.path.join(directory, "owner.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(asdict(record), fh)
    os.replace(tmp, os.path.join(directory, "owner.json"))


def mark_kept(tag: str) -> OwnerRecord:
    """Keep a lab alive after its owner exits: cleanup_stale() then leaves it alone."""
    record = read_record(tag)
    if record is None:
        raise FileNotFoundError(f"no record for lab {tag}")
    record = replace(record, kept=True)
    _write_owner(record_dir(tag), record)
    return record


def _record_tags() -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return sorted(t for t in os.listdir(REGISTRY_ROOT) if valid_tag(t))
    return []


def kept_records() -> list[OwnerRecord]:
    """Records of labs left up on purpose (sorted by tag)."""
    records = (read_record(tag) for tag in _record_tags())
    return [r for r in records if r is not None and r.kept]


def release(tag: str) -> None:
    shutil.rmtree(record_dir(tag), ignore_errors=True)


def read_record(tag: str) -> OwnerRecord | None:
    try:
        with open(os.path.join(record_dir(tag), "owner.json"), encoding="utf-8") as fh:
            record = OwnerRecord(**json.load(fh))
    except (OSError, ValueError, TypeError):
        return None
    return record if record.tag == tag else None


def destroy(tag: str, workdir: str | None = None) -> list[str]:
    """Kill the lab's processes, delete its namespaces, workdir and record. Never raises.

    Only the exact names a lab creates are deleted, and the record goes last, so an interrupted
    destroy leaves the record that lets the next cleanup finish the job. Returns what it removed."""
    removed = []
    existing = set(list_netns())
    for name in lab_ns_names(tag):
        if name in existing:
            delete_netns(name)
            removed.append(name)
    record = read_record(tag)
    for path in sorted({workdir, record.workdir if record else None} - {None}):
        assert path is not None
        if os.path.basename(path).startswith("natlink-lab-") and os.path.isdir(path):  # only a dir we made
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    release(tag)
    return removed


@dataclass
class Cleanup:
    """What cleanup_stale() did and what it left alone, for the caller to report."""

    removed: dict[str, list[str]] = field(default_factory=dict)  # tag -> namespaces and files removed
    unowned: list[str] = field(default_factory=list)  # names like ours without any readable record
    unproven: list[str] = field(default_factory=list)  # tags whose owner we cannot judge from here

    @property
    def removed_tags(self) -> list[str]:
        return sorted(self.removed)


def cleanup_stale() -> Cleanup:
    """Destroy labs whose record exists and whose owner is provably dead; leave everything else."""
    result = Cleanup()
    records = {tag: read_record(tag) for tag in _record_tags()}
    for tag, record in records.items():
        if record is None:
            continue  # unreadable record (or a newer natlink's format): not proof of anything
        state = owner_state(record)
        if state is Owner.DEAD:
            result.removed[tag] = destroy(tag)
            log.info("removed lab %s of dead process %s: %s", tag, record.pid,
                     ", ".join(result.removed[tag]) or "its record only")
        elif state is Owner.UNPROVEN:
            result.unproven.append(tag)
            log.info("left lab %s alone: its owner (pid %s) is in another PID namespace or boot", tag, record.pid)
    for name in list_netns():
        tag = tag_of_ns(name)
        if tag is not None and records.get(tag) is None and tag not in result.removed:
            result.unowned.append(name)
            log.info("left namespace %s alone: it looks like a natlink lab but has no owner record here", name)
    return result
