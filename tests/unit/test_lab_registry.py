"""Which labs cleanup may remove: only those whose record exists and whose owner is provably dead, judged
from the owner's own PID namespace and boot. Pure tables over registry.judge / tag_of_ns; the real
namespaces, records and a second PID namespace are in tests/lab/test_lab_ownership.py."""

from __future__ import annotations

import pytest

from natlink.lab.registry import Here, Owner, OwnerRecord, SeenProcess, judge, lab_ns_names, ns_name, tag_of_ns

HERE = Here(pidns=4026531836, boot_id="b1")


def record(pidns: int | None = 4026531836, boot_id: str | None = "b1", starttime: int | None = 500,
           kept: bool = False) -> OwnerRecord:
    return OwnerRecord(tag="abc123", pid=4242, starttime=starttime, workdir="/tmp/natlink-lab-abc123-x",
                       pidns=pidns, boot_id=boot_id, kept=kept)


GONE = SeenProcess(alive=False, starttime=None)
SAME = SeenProcess(alive=True, starttime=500)


@pytest.mark.parametrize("rec, here, seen, expected", [
    (record(), HERE, SAME, Owner.ALIVE),
    (record(), HERE, GONE, Owner.DEAD),
    (record(), HERE, SeenProcess(alive=True, starttime=900), Owner.DEAD),  # PID reused by someone else
    (record(), HERE, SeenProcess(alive=False, starttime=500), Owner.DEAD),  # a zombie is dead
    (record(starttime=None), HERE, SAME, Owner.ALIVE),  # cannot compare start times: assume alive
    (record(kept=True), HERE, GONE, Owner.KEPT),
    (record(pidns=1234), HERE, GONE, Owner.UNPROVEN),  # owner in another PID namespace: its PID means nothing here
    (record(pidns=None), HERE, GONE, Owner.UNPROVEN),  # the owner could not say which PID namespace it was in
    (record(), Here(pidns=None, boot_id="b1"), GONE, Owner.UNPROVEN),  # our /proc is another namespace's
    (record(boot_id="b0"), HERE, GONE, Owner.UNPROVEN),  # written in another boot (a /run that persisted)
    (record(boot_id=None), HERE, GONE, Owner.UNPROVEN),
], ids=["alive", "dead", "pid-reused", "zombie", "no-starttime", "kept", "other-pidns", "unknown-pidns",
        "our-proc-foreign", "other-boot", "unknown-boot"])
def test_judge(rec: OwnerRecord, here: Here, seen: SeenProcess, expected: Owner) -> None:
    assert judge(rec, here, seen) is expected


@pytest.mark.parametrize("name, tag", [
    (ns_name("abc123", "rtr"), "abc123"),
    ("natlink-lab-abc123-lan2", "abc123"),
    ("natlink-lab-abc123-vpn", None),  # not a host a lab creates
    ("natlink-lab-ABC-lan", None),
    ("natlink-lab-toolongtag-lan", None),
    ("natlink-lab--lan", None),
    ("natlink-lab-abc123", None),
    ("nl-abc123-rtr", None),  # the old prefix: another natlink generation's (or a person's), never ours
    ("nl-home-vpn", None),
    ("home-vpn", None),
])
def test_only_exact_lab_shaped_names_carry_a_tag(name: str, tag: str | None) -> None:
    assert tag_of_ns(name) == tag


def test_a_lab_names_only_its_own_hosts() -> None:
    assert lab_ns_names("abc123") == ["natlink-lab-abc123-lan", "natlink-lab-abc123-lan2",
                                      "natlink-lab-abc123-rtr", "natlink-lab-abc123-wan"]
