"""The authoritative answer kept per DDNS name (natlink.ddns.authoritative): what is recorded, and when a
round's answer is worth a state write."""

from __future__ import annotations

import pytest

from natlink.ddns.authoritative import REFRESH, answer, changed, for_status
from natlink.ddns.live import LiveRecord

NOW = 1_800_000_000.0
KNOT = "10.0.0.53:5353"
H = "a.example"


@pytest.mark.parametrize("records, addresses, server, problem", [
    ([LiveRecord(H, 4, frozenset({"11.0.0.2"}), KNOT)], {"ipv4": ["11.0.0.2"]}, KNOT, None),
    ([LiveRecord(H, 4, frozenset({"11.0.0.2"}), KNOT),
      LiveRecord(H, 6, frozenset({"2001:db8::2", "2001:db8::1"}), KNOT)],
     {"ipv4": ["11.0.0.2"], "ipv6": ["2001:db8::1", "2001:db8::2"]}, KNOT, None),
    ([LiveRecord(H, 4, frozenset(), KNOT)], {"ipv4": []}, KNOT, None),  # NXDOMAIN / no A: an answer, "no record"
    ([LiveRecord(H, 4, None, KNOT, "no answer from 10.0.0.53:5353 (Timeout)")], {}, KNOT,
     "no answer from 10.0.0.53:5353 (Timeout)"),
    ([LiveRecord(H, 4, frozenset({"11.0.0.2"}), KNOT), LiveRecord(H, 6, None, "", "x is a CNAME at y")],
     {"ipv4": ["11.0.0.2"]}, KNOT, "x is a CNAME at y"),  # one family unreadable: the problem is kept beside
    ([LiveRecord(H, 4, None, "", "cannot find the name servers")], {}, "", "cannot find the name servers"),
])
def test_answer_recorded(records, addresses, server, problem):
    assert answer(records, NOW) == {"addresses": addresses, "server": server, "at": NOW, "problem": problem}


SAME = {"addresses": {"ipv4": ["11.0.0.2"]}, "server": KNOT, "at": NOW, "problem": None}


@pytest.mark.parametrize("old, new, since, save", [
    (None, SAME, None, True),  # never recorded
    ("junk", SAME, None, True),
    ({**SAME, "at": NOW - 60}, SAME, None, False),  # unchanged and recent: no write
    ({**SAME, "at": NOW - 60}, SAME, NOW - 30, True),  # kept by an earlier run of the service: re-saved
    ({**SAME, "at": NOW - 60}, SAME, NOW - 90, False),  # kept by this run
    ({**SAME, "at": NOW - REFRESH}, SAME, None, True),  # unchanged, but its age would lag: refresh
    ({**SAME, "at": None}, SAME, None, True),
    ({**SAME, "at": NOW - 60, "addresses": {"ipv4": ["11.0.0.9"]}}, SAME, None, True),  # the answer changed
    ({**SAME, "at": NOW - 60}, {**SAME, "server": "10.0.0.54"}, None, True),
    ({**SAME, "at": NOW - 60}, {**SAME, "addresses": {}, "problem": "timeout"}, None, True),  # now a problem
    ({**SAME, "at": NOW - 60, "addresses": {}, "problem": "timeout"}, {**SAME, "addresses": {}, "problem": "timeout"},
     None, False),  # the same problem again
])
def test_changed(old, new, since, save):
    assert changed(old, new, since) is save


@pytest.mark.parametrize("hosts, names, out", [
    (None, [H], {}),  # a document from before per-name recaps
    ({H: {"published": {"ipv4": "11.0.0.2"}}}, [H], {}),  # never asked
    ({H: {"published": {"ipv4": "11.0.0.2"}, "authoritative": SAME}}, [H],
     {H: {**SAME, "published": {"ipv4": "11.0.0.2"}}}),
    ({H: {"authoritative": SAME}, "gone.example": {"authoritative": SAME}}, [H], {H: {**SAME, "published": {}}}),
])
def test_for_status(hosts, names, out):
    assert for_status(hosts, names) == out
