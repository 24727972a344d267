"""PURE: from the checks' results to "the first broken link" and "these failures follow from it".

A later link that fails because an earlier one did (CGNAT → no mapping can be reached) is a *consequence*,
shown with a pointer to its cause instead of as a separate mystery. Everything here is a function over
dataclasses; tests/unit/test_doctor_chain.py holds the tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from natlink.doctor.family_line import family_line
from natlink.doctor.model import LINKS, CheckResult, Status

_NOT_OK = frozenset({Status.FAIL, Status.WARN, Status.SKIPPED})
NOT_CONFIGURED = "not-configured"  # the cause of a skip for a feature the config does not use


@dataclass(frozen=True)
class Rule:
    """A non-ok result on ``downstream`` follows from ``upstream`` being in one of ``when`` (same subject)."""

    upstream: int
    downstream: int
    when: frozenset[Status] = frozenset({Status.FAIL})
    causes: frozenset[str] | None = None  # only downstream results with one of these causes; None = any


RULES: tuple[Rule, ...] = (
    Rule(1, 4), Rule(1, 5), Rule(1, 8),  # lan_ip not on this host: mappings point nowhere, nothing listens
    Rule(2, 3), Rule(2, 4),  # no router answers: no WAN address, no mapping table
    Rule(3, 4), Rule(3, 7), Rule(3, 8),  # CGNAT / double NAT: nothing from outside can get in
    Rule(4, 8),  # no mapping: the outside connect cannot arrive
    Rule(5, 8),  # nothing listens: the outside connect is refused
    # An ISP block is only a warning on its own (the ISP may not block), but a timeout on that port proves it.
    Rule(6, 8, when=frozenset({Status.WARN, Status.FAIL}), causes=frozenset({"timeout"})),
)


@dataclass(frozen=True)
class ChainEntry:
    """One check's result in the chain, and the earlier result it follows from (if any)."""

    result: CheckResult
    consequence_of: int | None = None  # index (into ChainReport.entries) of the root cause

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json() | {"consequence_of": self.consequence_of}


@dataclass(frozen=True)
class ChainReport:
    entries: tuple[ChainEntry, ...]
    broken: int | None  # index of the first broken link's entry (the root cause to fix first)

    @property
    def failed(self) -> bool:
        return any(e.result.status is Status.FAIL for e in self.entries)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    @property
    def broken_entry(self) -> ChainEntry | None:
        return None if self.broken is None else self.entries[self.broken]

    def cause_of(self, entry: ChainEntry) -> ChainEntry | None:
        return None if entry.consequence_of is None else self.entries[entry.consequence_of]

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for e in self.entries:
            counts[e.result.status.value] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        broken = self.broken_entry
        return {
            "ok": not self.failed,
            "broken_link": None if broken is None else {
                "link": broken.result.link, "title": LINKS[broken.result.link].title, "check": broken.result.check,
                "finding": broken.result.finding, "fix": broken.result.fix},
            "counts": self.counts(),
            "families": family_line(e.result for e in self.entries),
            "checks": [self._entry_json(e) for e in self.entries],
        }

    def _entry_json(self, entry: ChainEntry) -> dict[str, Any]:
        doc = entry.result.to_json()
        cause = self.cause_of(entry)
        doc["title"] = LINKS[entry.result.link].title
        doc["consequence_of"] = None if cause is None else {"link": cause.result.link, "check": cause.result.check}
        return doc


def _subject_matches(up: CheckResult, down: CheckResult) -> bool:
    return up.subject is None or up.subject == down.subject


def _applies(rule: Rule, up: CheckResult, down: CheckResult) -> bool:
    if down.cause == NOT_CONFIGURED:  # nothing to break: "no [[ddns]] entry" is never "because of link 2"
        return False
    return (rule.upstream == up.link and rule.downstream == down.link and up.status in rule.when
            and down.status in _NOT_OK and _subject_matches(up, down)
            and (rule.causes is None or down.cause in rule.causes))


def analyse(results: Iterable[CheckResult], rules: tuple[Rule, ...] = RULES) -> ChainReport:
    """Order results by link, mark consequences (pointing at the root cause), pick the first broken link."""
    ordered = sorted(results, key=lambda r: r.link)  # stable: checks keep their order within a link
    roots: list[int | None] = [None] * len(ordered)
    for d, down in enumerate(ordered):
        candidates = [u for u, up in enumerate(ordered[:d]) if up.link < down.link
                      and any(_applies(rule, up, down) for rule in rules)]
        if candidates:
            first = candidates[0]  # the earliest link is the cause to fix first
            roots[d] = roots[first] if roots[first] is not None else first
    entries = tuple(ChainEntry(r, roots[i]) for i, r in enumerate(ordered))
    blamed = {root for root in roots if root is not None}
    broken_candidates = [i for i, e in enumerate(entries)
                         if e.consequence_of is None and (e.result.status is Status.FAIL or i in blamed)]
    return ChainReport(entries, broken_candidates[0] if broken_candidates else None)
