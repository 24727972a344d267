"""natlink/ddns/live.py against a real knot on loopback: only authoritative answers count, a missing name is
"missing" (not unknown), a CNAME or a server that is not authoritative is "not checked", never a drift."""

from __future__ import annotations

import socket

from natlink.ddns import live
from knot_local import LocalKnot, knot  # noqa: F401  (fixture)

NAME = "rdp.home.example"


def test_authoritative_answer(knot: LocalKnot) -> None:
    knot.set(NAME, "A", "11.0.0.2", "11.0.0.3")
    knot.set(NAME, "AAAA", "2001:db8::2")
    four = live.lookup(NAME, 4, knot.nameserver)
    six = live.lookup(NAME, 6, knot.nameserver)
    assert (four.addresses, four.problem) == (frozenset({"11.0.0.2", "11.0.0.3"}), None)
    assert six.addresses == frozenset({"2001:db8::2"}) and six.server == knot.nameserver
    assert live.drift([four, six], {4: "11.0.0.2", 6: "2001:db8::2"}) == {
        4: f"{NAME} A at {knot.nameserver} is 11.0.0.2, 11.0.0.3, not 11.0.0.2"}


def test_missing_name_and_missing_family_are_known_empty(knot: LocalKnot) -> None:
    assert live.lookup("nothere.home.example", 4, knot.nameserver).addresses == frozenset()  # NXDOMAIN
    knot.set(NAME, "A", "11.0.0.2")
    record = live.lookup(NAME, 6, knot.nameserver)  # NOERROR, no AAAA
    assert (record.addresses, record.problem, record.describe()) == (frozenset(), None, "missing")


def test_not_authoritative_and_cname_are_not_checked(knot: LocalKnot) -> None:
    other = live.lookup("www.example.org", 4, knot.nameserver)  # knot does not serve this zone: REFUSED, no AA
    assert other.addresses is None and other.problem
    knot.set("alias.home.example", "CNAME", f"{NAME}.")
    alias = live.lookup("alias.home.example", 4, knot.nameserver)
    assert alias.addresses is None and "CNAME" in (alias.problem or "")
    assert live.drift([other, alias], {4: "11.0.0.2"}) == {}


def test_no_answer_is_not_checked() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # bound, never answers
        s.bind(("127.0.0.1", 0))
        record = live.lookup(NAME, 4, f"127.0.0.1:{s.getsockname()[1]}", timeout=0.3)
    assert record.addresses is None and "no answer" in (record.problem or "")
