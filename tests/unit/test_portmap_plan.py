"""Table tests for the pure plan (natlink.portmap.plan) and epoch loss detection."""

from __future__ import annotations

import random

import pytest

from natlink.portmap.base import Mapping, owner_description, owner_name
from natlink.portmap.epoch import epoch_lost
from natlink.portmap.plan import Desired, Owned, plan, renew_due_remaining, renew_time

ME = "10.0.1.201"
NOW = 1_000_000.0


def want(name="rdp", ext=3390, ip=ME, port=3389, lease=3600, other=False, proto="tcp"):
    return Desired(proto, ext, ip, port, name=name, description=owner_description(name), lease=lease,
                   allow_other_port=other)


def entry(ext=3390, ip=ME, port=3389, desc="natlink:rdp", lease=3500, proto="tcp"):
    return Mapping(proto, ext, ip, port, desc, lease)


def rec(name="rdp", via="upnp", ext=3390, ip=ME, port=3389, lease=3600, at=NOW - 100, renew_at=None, epoch=None,
        proto="tcp"):
    return Owned(proto, ext, ip, port, name=name, mapper=via, lease=lease, granted_at=at,
                 renew_at=renew_at if renew_at is not None else at + lease * 0.55, epoch=epoch)


LISTED = [
    # (case, desired, table, owned, expected [(action, name)])
    ("missing -> add", [want()], [], {}, [("add", "rdp")]),
    ("ours in place -> keep", [want()], [entry()], {}, [("keep", "rdp")]),
    ("ours, half the lease gone -> renew", [want()], [entry(lease=1700)], {}, [("renew", "rdp")]),
    ("ours, permanent -> keep", [want(lease=0)], [entry(lease=0)], {}, [("keep", "rdp")]),
    ("ours, internal port changed -> replace", [want(port=3300)], [entry()], {}, [("replace", "rdp")]),
    ("other client's entry -> conflict", [want()], [entry(ip="10.0.1.99", desc="upnpc")], {},
     [("conflict", "rdp")]),
    ("other client's entry, other port allowed -> add any", [want(other=True)],
     [entry(ip="10.0.1.99", desc="upnpc")], {}, [("add", "rdp")]),
    ("same target by another client -> keep, untouched", [want()], [entry(desc="NAT-PMP 3390 tcp")], {},
     [("keep", "rdp")]),
    ("ours but no longer configured -> delete", [], [entry()], {}, [("delete", "rdp")]),
    ("another natlink instance's (other host) -> not touched", [], [entry(ip="10.0.1.99")], {}, []),
    ("other host but recorded as ours -> delete", [], [entry(ip="10.0.1.99")], {"rdp": rec(ip="10.0.1.99")},
     [("delete", "rdp")]),
    ("udp and tcp on the same port are different keys", [want(proto="udp")], [entry()], {},
     [("add", "rdp"), ("delete", "rdp")]),
    ("router gave another port last time -> keep it", [want(other=True)], [entry(ext=3391)],
     {"rdp": rec(ext=3391)}, [("keep", "rdp")]),
    ("left over at an old port -> add new + delete old", [want()], [entry(ext=3391)], {},
     [("add", "rdp"), ("delete", "rdp")]),
]


@pytest.mark.parametrize("case,desired,table,owned,expected", LISTED, ids=[c[0] for c in LISTED])
def test_plan_with_router_table(case, desired, table, owned, expected):
    p = plan(desired, table, owned, self_ip=ME, mapper="upnp", now=NOW)
    assert [(s.action, s.name) for s in p.steps] == expected


def test_plan_other_port_flag_and_conflict_reason():
    p = plan([want(other=True)], [entry(ip="10.0.1.99", desc="upnpc")], {}, self_ip=ME, mapper="upnp", now=NOW)
    assert p.steps[0].any_port
    c = plan([want()], [entry(ip="10.0.1.99", desc="upnpc")], {}, self_ip=ME, mapper="upnp", now=NOW).steps[0]
    assert "10.0.1.99:3389" in c.reason and "upnpc" in c.reason and not c.any_port


UNLISTED = [
    ("nothing recorded -> add", {}, None, [("add", "rdp")]),
    ("recorded, fresh -> verify (asked again, never kept on the record's word)",
     {"rdp": rec(via="natpmp", epoch=50)}, 150, [("verify", "rdp")]),
    ("recorded, epoch kept after a daemon restart -> verify", {"rdp": rec(via="natpmp", epoch=50)}, 151,
     [("verify", "rdp")]),
    ("recorded, renew time reached -> renew", {"rdp": rec(via="natpmp", at=NOW - 2000, epoch=50)}, 2050,
     [("renew", "rdp")]),
    ("lease expired -> add", {"rdp": rec(via="natpmp", at=NOW - 4000)}, None, [("add", "rdp")]),
    ("epoch went backwards -> add", {"rdp": rec(via="natpmp", epoch=500)}, 3, [("add", "rdp")]),
    ("made with another protocol -> add", {"rdp": rec(via="upnp")}, None, [("add", "rdp")]),
    ("config changed -> replace", {"rdp": rec(via="natpmp", port=3000)}, None, [("replace", "rdp")]),
    ("recorded but unconfigured -> delete", {"rdp": rec(via="natpmp"), "old": rec("old", via="natpmp", ext=4000)},
     None, [("verify", "rdp"), ("delete", "old")]),
]


@pytest.mark.parametrize("case,owned,epoch,expected", UNLISTED, ids=[c[0] for c in UNLISTED])
def test_plan_without_table(case, owned, epoch, expected):
    p = plan([want()], None, owned, self_ip=ME, mapper="natpmp", now=NOW, epoch=epoch)
    assert [(s.action, s.name) for s in p.steps] == expected


def test_epoch_reason_names_both_values():
    p = plan([want()], None, {"rdp": rec(via="pcp", epoch=500)}, self_ip=ME, mapper="pcp", now=NOW, epoch=3)
    assert "500" in p.steps[0].reason and "3" in p.steps[0].reason
    assert p.epoch_lost


def test_no_unlisted_step_claims_time_left_from_a_record():
    p = plan([want()], None, {"rdp": rec(via="natpmp", epoch=50)}, self_ip=ME, mapper="natpmp", now=NOW, epoch=150)
    assert not p.epoch_lost and "left" not in p.steps[0].reason and "NAT-PMP" in p.steps[0].reason


EPOCHS = [
    # prev_epoch, prev_at, epoch, now, lost
    (100, NOW - 10, 110, NOW, False),   # consistent
    (100, NOW - 10, 111, NOW, False),   # within slack
    (100, NOW - 10, 3, NOW, True),      # restarted
    (100, NOW, 99, NOW, False),         # one second back is tolerated
    (100, NOW - 1000, 200, NOW, True),  # far less time passed on the router: it restarted in between
    (100, NOW - 10, 500, NOW, True),    # far more time on the router than here: a different epoch
    (0, NOW - 1, 0, NOW, False),
]


@pytest.mark.parametrize("prev,prev_at,epoch,now,lost", EPOCHS)
def test_epoch_lost(prev, prev_at, epoch, now, lost):
    assert epoch_lost(prev, prev_at, epoch, now) is lost


@pytest.mark.parametrize("remaining,lease,due", [(3500, 3600, False), (1800, 3600, True), (100, 3600, True),
                                                 (0, 3600, False), (None, 3600, False), (10, 0, False)])
def test_renew_due_remaining(remaining, lease, due):
    assert renew_due_remaining(remaining, lease) is due


def test_renew_time_between_half_and_five_eighths():
    rng = random.Random(1)
    times = [renew_time(NOW, 3600, rng) for _ in range(200)]
    assert all(NOW + 1800 <= t <= NOW + 2250 for t in times)
    assert max(times) - min(times) > 100  # really jittered
    assert renew_time(NOW, 0) is None


@pytest.mark.parametrize("desc,name", [("natlink:rdp", "rdp"), ("natlink:rdp remote desktop", "rdp"),
                                       ("natlink:", None), ("upnpc", None), ("", None), ("NAT-PMP 3390 tcp", None)])
def test_owner_name(desc, name):
    assert owner_name(desc) == name


def test_owner_description_fits_upnp_field():
    assert owner_description("rdp", "remote desktop") == "natlink:rdp remote desktop"
    assert len(owner_description("x", "y" * 200)) < 80


def test_unlisted_protocol_with_the_table_read_over_upnp():
    """NAT-PMP maps, UPnP answered too: an entry seen in the table is kept; a missing one is asked for again."""
    owned = {"rdp": rec(via="natpmp", epoch=50)}
    there = [Mapping("tcp", 3390, ME, 3389, "NAT-PMP 3390 tcp", 3500)]
    kept = plan([want()], None, owned, self_ip=ME, mapper="natpmp", now=NOW, epoch=150, seen=there).steps[0]
    assert kept.action == "keep" and "read over UPnP" in kept.reason
    gone = plan([want()], None, owned, self_ip=ME, mapper="natpmp", now=NOW, epoch=150, seen=[]).steps[0]
    assert gone.action == "verify" and "not in the router's table" in gone.reason
    elsewhere = [Mapping("tcp", 3390, "10.0.1.99", 3389, "other", 3500)]
    assert plan([want()], None, owned, self_ip=ME, mapper="natpmp", now=NOW, epoch=150,
                seen=elsewhere).steps[0].action == "verify"
