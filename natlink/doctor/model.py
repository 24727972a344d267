"""What a doctor check returns, and the links of the chain it belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Link:
    number: int
    title: str


# The chain a home server's reachability hangs on, in the order a person would fix it.
LINKS: dict[int, Link] = {link.number: link for link in (
    Link(1, "Config and LAN address"),
    Link(2, "Router (UPnP IGD / NAT-PMP / PCP)"),
    Link(3, "Router WAN address"),
    Link(4, "Port mappings on the router"),
    Link(5, "Local services listening"),
    Link(6, "ISP-blocked external ports"),
    Link(7, "DDNS names"),
    Link(8, "Reachability from outside"),
    Link(9, "Host limits for long connections"),
    Link(10, "IPv6: address, pinhole, AAAA, outside connect"),  # only when something asks for IPv6
)}


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: a one-line finding and, unless ok, the fix.

    ``subject`` names what the check is about (a mapping name, a hostname) so the chain can tie a later
    failure to an earlier one about the same thing; None means "everything on this link".
    ``cause`` is a short machine tag ("cgnat", "timeout", "refused", "isp-blocked", ...) the chain rules use.
    """

    link: int
    check: str
    status: Status
    finding: str
    fix: str = ""
    elapsed: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)
    subject: str | None = None
    cause: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "link": self.link, "check": self.check, "status": self.status.value, "finding": self.finding,
            "fix": self.fix or None, "elapsed": round(self.elapsed, 4), "subject": self.subject, "cause": self.cause,
            "data": self.data,
        }


def ok(link: int, check: str, finding: str, **kw: Any) -> CheckResult:
    return CheckResult(link, check, Status.OK, finding, **kw)


def warn(link: int, check: str, finding: str, fix: str, **kw: Any) -> CheckResult:
    return CheckResult(link, check, Status.WARN, finding, fix, **kw)


def fail(link: int, check: str, finding: str, fix: str, **kw: Any) -> CheckResult:
    return CheckResult(link, check, Status.FAIL, finding, fix, **kw)


def skipped(link: int, check: str, finding: str, fix: str = "", **kw: Any) -> CheckResult:
    return CheckResult(link, check, Status.SKIPPED, finding, fix, **kw)
