"""PURE: desired mappings + what the router (or natlink's record of it) has -> a Plan of steps.

No I/O here: every input is plain data, so every decision has a table test in tests/unit/test_portmap_plan.py.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from natlink.durations import plain_duration
from natlink.portmap.base import Forward, Mapping, owner_name
from natlink.portmap.epoch import epoch_lost

ADD, RENEW, REPLACE, KEEP, DELETE, CONFLICT = "add", "renew", "replace", "keep", "delete", "conflict"
# NAT-PMP/PCP cannot list the router's table: a mapping natlink believes is there is asked for again (idempotent:
# same port, lease refreshed). That is the only way to see it, so it is never "kept" on the strength of a record.
VERIFY = "verify"
CHANGES = (ADD, RENEW, REPLACE, DELETE)
_LABEL = {"natpmp": "NAT-PMP", "pcp": "PCP", "upnp": "UPnP"}
REQUESTS = (ADD, RENEW, REPLACE, VERIFY)  # steps that send a mapping request to the router


@dataclass(frozen=True, kw_only=True)
class Desired(Forward):
    """A configured mapping made ready for the router (internal_ip resolved): what plan() works towards."""

    name: str
    description: str  # the full router description, "natlink:<name> ..."
    lease: int  # requested seconds; 0 = permanent
    allow_other_port: bool = False

    def mapping(self, external_port: int | None = None) -> Mapping:
        return Mapping(self.protocol, external_port or self.external_port, self.internal_ip, self.internal_port,
                       self.description, self.lease)


@dataclass(frozen=True, kw_only=True)
class Owned(Forward):
    """natlink's record of a mapping it made (state key "mappings": one flat JSON object per name, the
    Forward's keys among the others)."""

    name: str
    mapper: str  # what made it: upnp | natpmp | pcp (the state record's key is "via")
    lease: int  # granted; 0 = permanent
    granted_at: float
    renew_at: float | None = None  # None: never (permanent)
    epoch: int | None = None
    nonce: str | None = None
    permanent_only: bool = False  # the router accepts only permanent leases (UPnP 725)
    gateway: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Owned | None":
        data = {("mapper" if k == "via" else k): v for k, v in data.items()}
        try:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError:
            return None  # an unreadable record is treated as absent

    def to_json(self) -> dict[str, Any]:
        return {("via" if k == "mapper" else k): v for k, v in asdict(self).items()}

    def mapping(self) -> Mapping:
        return Mapping(self.protocol, self.external_port, self.internal_ip, self.internal_port,
                       f"natlink:{self.name}", self.lease)


@dataclass(frozen=True)
class Step:
    action: str  # add | renew | replace | keep | verify | delete | conflict
    name: str
    want: Mapping | None  # what it should become (None for delete)
    have: Mapping | None  # what is there now (None for add)
    reason: str
    any_port: bool = False  # let the router choose another external port (allow_other_port)
    foreign: bool = False  # keep: another client's entry that already does the job; never renewed by natlink

    @property
    def changes(self) -> bool:
        return self.action in CHANGES

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "name": self.name, "want": self.want.to_json() if self.want else None,
                "have": self.have.to_json() if self.have else None, "reason": self.reason,
                "any_port": self.any_port}


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...] = ()
    epoch_lost: bool = False  # NAT-PMP/PCP: a record's epoch is inconsistent with the time passed (router forgot)

    @property
    def changes(self) -> bool:
        return any(s.changes for s in self.steps)

    def of(self, action: str) -> list[Step]:
        return [s for s in self.steps if s.action == action]

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.steps]


def renew_due_remaining(remaining: int | None, lease: int) -> bool:
    """UPnP: renew once half the requested lease has passed (the table shows the time left)."""
    if lease == 0 or remaining is None or remaining == 0:  # permanent, or the router does not say
        return False
    return remaining <= lease / 2


def renew_time(granted_at: float, lease: int, rng: random.Random | None = None) -> float | None:
    """When to renew: at 1/2 to 5/8 of the lease, picked at random so clients spread out (RFC 6887 11.2.1)."""
    if lease <= 0:
        return None
    return granted_at + lease * (rng or random).uniform(0.5, 0.625)


def plan(desired: list[Desired], actual: list[Mapping] | None, owned: dict[str, Owned], *, self_ip: str,
         mapper: str, now: float, epoch: int | None = None, force_renew: bool = False,
         seen: list[Mapping] | None = None) -> Plan:
    """The steps that make the router match ``desired``.

    actual: the router's table (UPnP), or None when the protocol cannot list it (NAT-PMP/PCP): then natlink's
    own records stand in for it, and an epoch inconsistent with the time passed means the router forgot them.
    seen: NAT-PMP/PCP in use, but the router's table was read over UPnP in this run: an entry found there is
    kept (seen), only the others are asked for again.
    force_renew: every natlink mapping that would be kept is renewed instead (after a router announcement the
    router may have forgotten leases without anything natlink can read showing it). Entries of other clients
    that happen to match are still left alone.
    """
    if actual is None:
        the_plan = _plan_unlisted(desired, owned, mapper=mapper, now=now, epoch=epoch, seen=seen)
    else:
        the_plan = _plan_listed(desired, actual, owned, self_ip=self_ip)
    return _forced(the_plan) if force_renew else the_plan


def _forced(the_plan: Plan) -> Plan:
    steps = tuple(Step(RENEW, s.name, s.want, s.have, f"renewal forced ({s.reason})")
                  if s.action == KEEP and not s.foreign else s for s in the_plan.steps)
    return Plan(steps, the_plan.epoch_lost)


def owned_name(m: Mapping, owned: dict[str, Owned], self_ip: str) -> str | None:
    """The natlink name of a router entry that is this host's to manage, else None: its description says
    "natlink:<name>" and it points at this host, or natlink's record of <name> is this very entry (a mapping
    made for another LAN host). Another natlink instance's entry (another host, not in our records) is not ours."""
    name = owner_name(m.description)
    if name is None:
        return None
    rec = owned.get(name)
    if m.internal_ip == self_ip or (rec is not None and rec.protocol == m.protocol
                                    and rec.external_port == m.external_port):
        return name
    return None


def _plan_listed(desired: list[Desired], actual: list[Mapping], owned: dict[str, Owned], *, self_ip: str) -> Plan:
    by_key = {m.key: m for m in actual}
    ours_by_name: dict[str, list[Mapping]] = {}
    for m in actual:
        name = owned_name(m, owned, self_ip)
        if name is not None:
            ours_by_name.setdefault(name, []).append(m)

    steps: list[Step] = []
    used: set[tuple[str, int]] = set()
    wanted_names = {d.name for d in desired}
    for d in desired:
        mine = ours_by_name.get(d.name, [])
        rec = owned.get(d.name)
        port = d.external_port
        if d.allow_other_port and rec is not None and rec.protocol == d.protocol:
            port = rec.external_port  # keep the port the router gave last time
        exact = next((m for m in mine if m.key == (d.protocol, port)), None)
        if exact is None and d.allow_other_port:
            exact = next((m for m in mine if m.protocol == d.protocol), None)
        if exact is not None:
            used.add(exact.key)
            if not exact.same_target(d):
                steps.append(Step(REPLACE, d.name, d.mapping(exact.external_port), exact,
                                  f"points at {exact.internal_ip}:{exact.internal_port}, configured "
                                  f"{d.internal_ip}:{d.internal_port}"))
            elif renew_due_remaining(exact.lease, d.lease):
                steps.append(Step(RENEW, d.name, d.mapping(exact.external_port), exact,
                                  f"{plain_duration(exact.lease)} of the {plain_duration(d.lease)} lease left"))
            else:
                when = ("permanent" if not exact.lease else
                        f"renews in {plain_duration(max(0, exact.lease - d.lease // 2))}" if d.lease else
                        f"{plain_duration(exact.lease)} left")
                steps.append(Step(KEEP, d.name, d.mapping(exact.external_port), exact,
                                  f"in the router's table, {when}"))
            continue
        holder = by_key.get(d.key)
        if holder is None:
            reason = "missing from the router's table" + (" (the router forgot it)" if rec is not None else "")
            steps.append(Step(ADD, d.name, d.mapping(), None, reason))
        elif holder.same_target(d):
            used.add(holder.key)
            steps.append(Step(KEEP, d.name, d.mapping(), holder,
                              f"already mapped to this target by another client "
                              f"({holder.description or 'no description'}); left alone", foreign=True))
        elif d.allow_other_port:
            steps.append(Step(ADD, d.name, d.mapping(), holder,
                              f"port taken by {holder.internal_ip}:{holder.internal_port}; the router picks another",
                              any_port=True))
        else:
            steps.append(Step(CONFLICT, d.name, d.mapping(), holder,
                              f"{d.protocol.upper()} {d.external_port} is taken by "
                              f"{holder.internal_ip}:{holder.internal_port} "
                              f"({holder.description or 'no description'})"))
    for name, entries in sorted(ours_by_name.items()):
        for m in entries:
            if m.key in used:
                continue
            reason = "no longer configured" if name not in wanted_names else "left over from an earlier port"
            steps.append(Step(DELETE, name, None, m, reason))
    return Plan(tuple(steps))


def _plan_unlisted(desired: list[Desired], owned: dict[str, Owned], *, mapper: str, now: float,
                   epoch: int | None, seen: list[Mapping] | None = None) -> Plan:
    steps: list[Step] = []
    lost = False
    table = {m.key: m for m in seen} if seen is not None else None
    for d in desired:
        rec = owned.get(d.name)
        if rec is None or rec.mapper != mapper:
            steps.append(Step(ADD, d.name, d.mapping(), None, "not mapped by natlink yet" if rec is None
                              else f"was made with {rec.mapper}; now using {mapper}"))
            continue
        have = rec.mapping()
        if rec.epoch is not None and epoch is not None and epoch_lost(rec.epoch, rec.granted_at, epoch, now):
            lost = True
            steps.append(Step(ADD, d.name, d.mapping(), None,
                              f"the router forgot it: its epoch is {epoch} s now, was {rec.epoch} s when "
                              f"granted {max(0, int(now - rec.granted_at))} s ago (reboot or new WAN address)"))
            continue
        if rec.lease and now >= rec.granted_at + rec.lease:
            steps.append(Step(ADD, d.name, d.mapping(), None, "its lease has expired"))
            continue
        port_ok = rec.external_port == d.external_port or d.allow_other_port
        if not port_ok or not rec.same_target(d):
            steps.append(Step(REPLACE, d.name, d.mapping(), have, "the configuration changed"))
        elif rec.renew_at is not None and now >= rec.renew_at:
            steps.append(Step(RENEW, d.name, d.mapping(rec.external_port), have, "half the lease has passed"))
        elif table is not None and (entry := table.get(rec.key)) is not None and entry.same_target(d):
            steps.append(Step(KEEP, d.name, d.mapping(rec.external_port), entry,
                              "in the router's table (read over UPnP)"))
        else:
            # A restart of the router's mapping daemon that keeps the epoch (miniupnpd with system_uptime) is
            # invisible in any record: only the router's answer to the same request shows the mapping is there.
            why = (f"{_LABEL.get(mapper, mapper)} cannot list the router's table" if table is None
                   else "not in the router's table (read over UPnP)")
            steps.append(Step(VERIFY, d.name, d.mapping(rec.external_port), have, f"asked again: {why}"))
    wanted = {d.name for d in desired}
    for name, rec in sorted(owned.items()):
        if name not in wanted:
            steps.append(Step(DELETE, name, None, rec.mapping(), "no longer configured"))
    return Plan(tuple(steps), lost)
