"""The chain logic: which failure is the root, which are consequences (pure, table-driven)."""

from __future__ import annotations

import pytest

from natlink.doctor.chain import analyse
from natlink.doctor.model import CheckResult, Status

OK, WARN, FAIL, SKIP = Status.OK, Status.WARN, Status.FAIL, Status.SKIPPED


def r(link: int, status: Status, subject: str | None = None, cause: str | None = None, check: str = "") -> CheckResult:
    return CheckResult(link, check or f"c{link}", status, f"finding {link}", "" if status is OK else f"fix {link}",
                       subject=subject, cause=cause)


# (results, expected (link, subject) of the broken link or None, expected {(link, subject): root link} consequences, exit)
CASES = [
    pytest.param([r(1, OK), r(2, OK), r(3, OK), r(4, OK, "rdp"), r(5, OK, "rdp"), r(8, OK, "rdp")],
                 None, {}, 0, id="all-ok"),
    pytest.param([r(1, OK), r(2, OK), r(3, FAIL, cause="cgnat"), r(4, FAIL, "rdp"), r(5, OK, "rdp"),
                  r(7, SKIP, "rdp.home.example"), r(8, FAIL, "rdp", "timeout")],
                 (3, None), {(4, "rdp"): 3, (7, "rdp.home.example"): 3, (8, "rdp"): 3}, 1, id="cgnat"),
    pytest.param([r(2, FAIL), r(3, FAIL), r(4, FAIL, "rdp"), r(8, FAIL, "rdp", "timeout")],
                 (2, None), {(3, None): 2, (4, "rdp"): 2, (8, "rdp"): 2}, 1, id="no-router-consequences-chain-to-root"),
    pytest.param([r(4, OK, "rdp"), r(5, FAIL, "rdp", "refused"), r(8, FAIL, "rdp", "refused")],
                 (5, "rdp"), {(8, "rdp"): 5}, 1, id="service-down"),
    pytest.param([r(4, FAIL, "rdp", "missing"), r(4, OK, "ssh"), r(5, OK, "rdp"),
                  r(8, FAIL, "rdp", "refused"), r(8, FAIL, "ssh", "timeout")],
                 (4, "rdp"), {(8, "rdp"): 4}, 1, id="per-subject-only"),
    pytest.param([r(6, WARN, "web", "isp-blocked"), r(8, FAIL, "web", "timeout")],
                 (6, "web"), {(8, "web"): 6}, 1, id="isp-block-proven-by-timeout"),
    pytest.param([r(6, WARN, "web", "isp-blocked"), r(8, FAIL, "web", "refused")],
                 (8, "web"), {}, 1, id="isp-block-not-the-reason-for-refused"),
    pytest.param([r(6, WARN, "web", "isp-blocked"), r(8, OK, "web")], None, {}, 0, id="warn-only-exit-0"),
    pytest.param([r(9, WARN), r(1, OK)], None, {}, 0, id="host-limit-warning"),
    pytest.param([r(8, FAIL, "rdp"), r(3, OK), r(1, FAIL)], (1, None), {(8, "rdp"): 1}, 1, id="unordered-input"),
    pytest.param([r(3, OK), r(7, FAIL, "a.example"), r(8, OK, "rdp")], (7, "a.example"), {}, 1, id="dns-alone"),
    pytest.param([r(3, FAIL), r(9, WARN)], (3, None), {}, 1, id="independent-link-not-consequence"),
]


@pytest.mark.parametrize("results,broken,consequences,exit_code", CASES)
def test_chain(results, broken, consequences, exit_code) -> None:
    report = analyse(results)
    found = report.broken_entry
    assert (None if found is None else (found.result.link, found.result.subject)) == broken
    got = {}
    for entry in report.entries:
        cause = report.cause_of(entry)
        if cause is not None:
            got[(entry.result.link, entry.result.subject)] = cause.result.link
    assert got == consequences
    assert report.exit_code == exit_code


def test_entries_sorted_by_link_and_stable_within_link() -> None:
    report = analyse([r(8, OK, check="b"), r(4, OK, check="x"), r(4, OK, check="y"), r(1, OK)])
    assert [(e.result.link, e.result.check) for e in report.entries] == [(1, "c1"), (4, "x"), (4, "y"), (8, "b")]


def test_json_names_broken_link_and_consequences() -> None:
    doc = analyse([r(3, FAIL, cause="cgnat"), r(4, FAIL, "rdp")]).to_json()
    assert doc["ok"] is False
    assert doc["broken_link"]["link"] == 3 and doc["broken_link"]["fix"] == "fix 3"
    assert doc["checks"][1]["consequence_of"] == {"link": 3, "check": "c3"}
    assert doc["counts"] == {"ok": 0, "warn": 0, "fail": 2, "skipped": 0}
