"""force_renew in the pure plan: every natlink mapping that would be kept is renewed; nothing else changes."""

from __future__ import annotations

import pytest

from natlink.portmap.base import Mapping, owner_description
from natlink.portmap.plan import Desired, Owned, plan

ME = "10.0.1.201"
NOW = 1_000_000.0


def want(name="rdp", ext=3390, port=3389, lease=3600, proto="tcp"):
    return Desired(proto, ext, ME, port, name=name, description=owner_description(name), lease=lease)


def entry(name="rdp", ext=3390, ip=ME, port=3389, lease=3500, desc=None, proto="tcp"):
    return Mapping(proto, ext, ip, port, owner_description(name) if desc is None else desc, lease)


def rec(name="rdp", via="natpmp", ext=3390, port=3389, lease=3600, at=NOW - 100, epoch=50, renew_at=None):
    renew = renew_at if renew_at is not None else (None if lease == 0 else at + lease * 0.55)
    return Owned("tcp", ext, ME, port, name=name, mapper=via, lease=lease, granted_at=at, renew_at=renew, epoch=epoch)


LISTED = [
    # (case, desired, table, owned, expected [(action, name)])
    ("kept -> renewed", [want()], [entry()], {}, [("renew", "rdp")]),
    ("permanent kept -> renewed", [want(lease=0)], [entry(lease=0)], {}, [("renew", "rdp")]),
    ("already due -> renew (unchanged)", [want()], [entry(lease=1000)], {}, [("renew", "rdp")]),
    ("missing -> add (unchanged)", [want()], [], {}, [("add", "rdp")]),
    ("another client's matching entry -> still left alone", [want()], [entry(desc="NAT-PMP 3390 tcp")], {},
     [("keep", "rdp")]),
    ("conflict stays a conflict", [want()], [entry(ip="10.0.1.99", desc="upnpc")], {}, [("conflict", "rdp")]),
    ("unconfigured -> delete (unchanged)", [], [entry()], {}, [("delete", "rdp")]),
    ("changed target -> replace (unchanged)", [want(port=3300)], [entry()], {}, [("replace", "rdp")]),
]


@pytest.mark.parametrize("case,desired,table,owned,expected", LISTED, ids=[c[0] for c in LISTED])
def test_force_renew_with_table(case, desired, table, owned, expected):
    p = plan(desired, table, owned, self_ip=ME, mapper="upnp", now=NOW, force_renew=True)
    assert [(s.action, s.name) for s in p.steps] == expected


UNLISTED = [
    # (case, owned, epoch, expected)
    # NAT-PMP/PCP re-request every recorded mapping anyway ("verify"); forcing changes nothing there.
    ("fresh record -> verified", {"rdp": rec()}, 150, [("verify", "rdp")]),
    ("permanent record -> verified", {"rdp": rec(lease=0)}, 150, [("verify", "rdp")]),
    ("epoch consistent but maybe a quick restart -> verified", {"rdp": rec(epoch=50)}, 149, [("verify", "rdp")]),
    ("epoch went backwards -> add (unchanged)", {"rdp": rec(epoch=500)}, 3, [("add", "rdp")]),
    ("nothing recorded -> add (unchanged)", {}, 150, [("add", "rdp")]),
    ("made with another protocol -> add (unchanged)", {"rdp": rec(via="pcp")}, 150, [("add", "rdp")]),
    ("config changed -> replace (unchanged)", {"rdp": rec(port=3000)}, 150, [("replace", "rdp")]),
    ("unconfigured -> delete (unchanged)", {"rdp": rec(), "old": rec("old", ext=4000)}, 150,
     [("verify", "rdp"), ("delete", "old")]),
]


@pytest.mark.parametrize("case,owned,epoch,expected", UNLISTED, ids=[c[0] for c in UNLISTED])
def test_force_renew_without_table(case, owned, epoch, expected):
    p = plan([want()], None, owned, self_ip=ME, mapper="natpmp", now=NOW, epoch=epoch, force_renew=True)
    assert [(s.action, s.name) for s in p.steps] == expected


def test_forced_renew_says_why_and_keeps_the_mapping():
    step = plan([want()], [entry()], {}, self_ip=ME, mapper="upnp", now=NOW, force_renew=True).steps[0]
    assert step.action == "renew" and "forced" in step.reason
    assert step.want == Mapping("tcp", 3390, ME, 3389, "natlink:rdp", 3600)
    assert step.have is not None and step.have.external_port == 3390


def test_forced_renew_renews_at_the_port_the_router_gave():
    d = Desired("tcp", 3390, ME, 3389, name="rdp", description=owner_description("rdp"), lease=3600,
                allow_other_port=True)
    owned = {"rdp": rec(ext=3391)}
    step = plan([d], None, owned, self_ip=ME, mapper="natpmp", now=NOW, epoch=150, force_renew=True).steps[0]
    assert step.action == "verify" and step.want is not None and step.want.external_port == 3391


@pytest.mark.parametrize("table", [None, [entry()]])
def test_without_force_nothing_is_renewed(table):
    p = plan([want()], table, {"rdp": rec(via="upnp" if table else "natpmp")}, self_ip=ME,
             mapper="upnp" if table else "natpmp", now=NOW, epoch=150)
    assert [s.action for s in p.steps] == ["keep" if table else "verify"]
