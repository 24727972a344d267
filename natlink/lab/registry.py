"""Who owns which lab: a record per lab under /run/natlink-lab/<tag>/ so killed runs can be tidied.

A lab writes its record *before* creating any namespace, so a concurrent cleanup never
mistakes a lab that is still starting for an orphan.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass

from natlink.lab.netns import delete_netns, list_netns
from natlink.lab.procs import pid_alive, pid_starttime

REGISTRY_ROOT = "/run/natlink-lab"
NS_PREFIX = "nl-"
TAG_RE = re.compile(r"^[0-9a-z]{1,8}$")
# A record directory without an owner file is only treated as stale after this long.
ORPHAN_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class OwnerRecord:
    tag: str
    pid: int
    starttime: int | None
    workdir: str
    kept: bool = False  # left up on purpose (`natlink demo --keep`): never stale, only destroyed by asking

    def owner_alive(self) -> bool:
        return pid_alive(self.pid) and pid_starttime(self.pid) == self.starttime


def record_dir(tag: str) -> str:
    return os.path.join(REGISTRY_ROOT, tag)


def ns_name(tag: str, host: str) -> str:
    return f"{NS_PREFIX}{tag}-{host}"


def tag_of_ns(name: str) -> str | None:
    if not name.startswith(NS_PREFIX):
        return None
    tag = name[len(NS_PREFIX) :].split("-", 1)[0]
    return tag if TAG_RE.match(tag) else None


def claim(tag: str, workdir: str) -> OwnerRecord:
    """Create the record for a new lab; fails if the tag is already taken."""
    os.makedirs(REGISTRY_ROOT, exist_ok=True)
    os.mkdir(record_dir(tag))  # FileExistsError = tag collision
    pid = os.getpid()
    record = OwnerRecord(tag=tag, pid=pid, starttime=pid_starttime(pid), workdir=workdir)
    _write(record)
    return record


def _write(record: OwnerRecord) -> None:
    tmp = os.path.join(record_dir(record.tag), "owner.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(asdict(record), fh)
    os.replace(tmp, os.path.join(record_dir(record.tag), "owner.json"))


def mark_kept(tag: str) -> OwnerRecord:
    """Keep a lab alive after its owner exits: cleanup_stale() then leaves it alone."""
    record = read_record(tag)
    if record is None:
        raise FileNotFoundError(f"no record for lab {tag}")
    record = OwnerRecord(**{**asdict(record), "kept": True})
    _write(record)
    return record


def kept_records() -> list[OwnerRecord]:
    """Records of labs left up on purpose (sorted by tag)."""
    records = []
    with contextlib.suppress(FileNotFoundError):
        for tag in sorted(os.listdir(REGISTRY_ROOT)):
            record = read_record(tag) if TAG_RE.match(tag) else None
            if record is not None and record.kept:
                records.append(record)
    return records


def release(tag: str) -> None:
    shutil.rmtree(record_dir(tag), ignore_errors=True)


def read_record(tag: str) -> OwnerRecord | None:
    try:
        with open(os.path.join(record_dir(tag), "owner.json"), encoding="utf-8") as fh:
            return OwnerRecord(**json.load(fh))
    except (OSError, ValueError, TypeError):
        return None


def _is_stale(tag: str) -> bool:
    if not os.path.isdir(record_dir(tag)):
        return True  # namespaces without any record: left by a run that lost it
    record = read_record(tag)
    if record is not None:
        return not record.kept and not record.owner_alive()
    try:
        age = time.time() - os.stat(record_dir(tag)).st_mtime
    except OSError:
        return True
    return age > ORPHAN_GRACE_SECONDS


def destroy(tag: str, workdir: str | None = None) -> None:
    """Kill the lab's processes, delete its namespaces, workdir and record. Never raises."""
    for name in list_netns():
        if tag_of_ns(name) == tag:
            delete_netns(name)
    record = read_record(tag)
    for path in {workdir, record.workdir if record else None} - {None}:
        assert path is not None
        if os.path.basename(path).startswith("natlink-lab-"):  # never rm -rf something we did not create
            shutil.rmtree(path, ignore_errors=True)
    release(tag)


def cleanup_stale() -> list[str]:
    """Destroy labs whose owning process is gone; return their tags."""
    tags: set[str] = set()
    with contextlib.suppress(FileNotFoundError):
        tags.update(t for t in os.listdir(REGISTRY_ROOT) if TAG_RE.match(t))
    tags.update(t for t in map(tag_of_ns, list_netns()) if t)
    stale = sorted(t for t in tags if _is_stale(t))
    for tag in stale:
        destroy(tag)
    return stale
