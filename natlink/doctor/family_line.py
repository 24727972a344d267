"""PURE: the doctor's one line per address family — what a client needs — from the checks this run made,
in the wording `natlink map` uses (natlink.families). Only what was observed counts as open."""

from __future__ import annotations

from typing import Iterable

from natlink import families
from natlink.doctor.model import CheckResult, Status


def _probe_ok(r: CheckResult, family: str) -> bool:
    return r.link == 8 and r.check == "probe" and r.status is Status.OK and r.data.get("family") == family


def family_verdicts(results: Iterable[CheckResult]) -> tuple[families.FamilyVerdict, families.FamilyVerdict] | None:
    """(IPv4, IPv6) verdicts, or None when this run checked no IPv6 from outside (then there is nothing to join)."""
    rs = list(results)
    six_checked = [r for r in rs if (r.link == 10 and r.check == "ipv6-outside" and r.status is not Status.SKIPPED)
                   or (r.link == 8 and r.check == "probe" and r.data.get("family") == "ipv6")]
    if not six_checked:
        return None
    wan = next((r for r in rs if r.link == 3 and r.check == "wan" and r.status is Status.FAIL), None)
    if wan is not None:  # a router without a public WAN address: `natlink map`'s IPv4 wording (CGNAT or blocked)
        v4 = families.ipv4(wan.data.get("router_wan"), wan.finding, None)
    elif any(_probe_ok(r, "ipv4") for r in rs):
        v4 = families.FamilyVerdict(4, families.OPEN, "IPv4 is open (a connect from outside came through)")
    else:
        v4 = families.FamilyVerdict(4, families.UNKNOWN, "IPv4 was not proven reachable from outside")
    if any(r.status is Status.OK for r in six_checked):
        v6 = families.FamilyVerdict(6, families.OPEN, "IPv6 is open (a connect from outside came through)")
    else:
        v6 = families.FamilyVerdict(6, families.FAILED, "IPv6 is not reachable from outside")
    return v4, v6


def family_line(results: Iterable[CheckResult]) -> str | None:
    verdicts = family_verdicts(results)
    return families.summary(*verdicts) if verdicts else None
