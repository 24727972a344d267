"""The IPv6 address rule (docs/design/ipv6.md) as tables."""

from __future__ import annotations

import pytest

from natlink.ipv6addr import FOREVER, Addr6, combine, eui64, from_ip_json, interface_id, select, why_not

STABLE = "2a01:4f8:1:2::10"


@pytest.mark.parametrize("addr, why", [
    (Addr6(STABLE), None),
    (Addr6("2a01:4f8:1:2:a1b2:c3d4:e5f6:1", flags=frozenset({"temporary", "dynamic"})), "temporary"),
    (Addr6("2a01:4f8:1:2::11", flags=frozenset({"deprecated"})), "deprecated"),
    (Addr6("2a01:4f8:1:2::12", preferred_lft=0), "deprecated"),
    (Addr6("2a01:4f8:1:2::13", flags=frozenset({"tentative"})), "tentative"),
    (Addr6("2a01:4f8:1:2::14", flags=frozenset({"dadfailed"})), "dadfailed"),
    (Addr6("fd00:1::5"), "unique local"),
    (Addr6("fe80::1"), "link-local"),
    (Addr6("::ffff:11.0.0.2"), "IPv4-mapped"),
    (Addr6("2001:db8::1"), "reserved"),
    (Addr6("::1"), "loopback"),
    (Addr6("ff02::1"), "multicast"),
    (Addr6("2a01:4f8:1:2::15", flags=frozenset({"mngtmpaddr", "dynamic"}), valid_lft=86400), None),
])
def test_why_not(addr: Addr6, why: str | None) -> None:
    got = why_not(addr)
    assert (got is None) if why is None else (got is not None and why in got), got


def test_privacy_host_picks_the_stable_slaac_address_not_the_temporary_one() -> None:
    addrs = [Addr6("2a01:4f8:1:2:a1b2:c3d4:e5f6:1", ifname="eth0", flags=frozenset({"temporary", "dynamic"}),
                   preferred_lft=3000, valid_lft=80000),
             Addr6("2a01:4f8:1:2:5054:ff:fe12:3456", ifname="eth0", flags=frozenset({"mngtmpaddr", "dynamic"}),
                   preferred_lft=14000, valid_lft=86000),
             Addr6("fe80::5054:ff:fe12:3456", ifname="eth0")]
    s = select(addrs)
    assert s.address == "2a01:4f8:1:2:5054:ff:fe12:3456" and s.ifname == "eth0" and s.problem is None
    assert {a for a, _ in s.rejected} == {"2a01:4f8:1:2:a1b2:c3d4:e5f6:1", "fe80::5054:ff:fe12:3456"}


@pytest.mark.parametrize("addrs, interface, want", [
    # static (forever) beats SLAAC
    ([Addr6("2a01:4f8:1:2::aa", valid_lft=86000, preferred_lft=14000), Addr6(STABLE)], None, STABLE),
    # after renumbering: the old prefix deprecated, the new one chosen
    ([Addr6("2a01:4f8:1:2::201", preferred_lft=0, valid_lft=600),
      Addr6("2a01:4f8:9:9::201", preferred_lft=14000, valid_lft=86000)], None, "2a01:4f8:9:9::201"),
    # both preferred: the longer preferred lifetime (the newer prefix)
    ([Addr6("2a01:4f8:1:2::201", preferred_lft=100, valid_lft=600),
      Addr6("2a01:4f8:9:9::201", preferred_lft=14000, valid_lft=86000)], None, "2a01:4f8:9:9::201"),
    # per interface
    ([Addr6(STABLE, ifname="eth0"), Addr6("2a01:4f8:7::1", ifname="wg0")], "wg0", "2a01:4f8:7::1"),
    # equal rank: kernel order
    ([Addr6("2a01:4f8:1:2::1"), Addr6("2a01:4f8:1:2::2")], None, "2a01:4f8:1:2::1"),
])
def test_select_ranking(addrs: list[Addr6], interface: str | None, want: str) -> None:
    assert select(addrs, interface).address == want


@pytest.mark.parametrize("addrs, interface, problem", [
    ([], None, "this host has no IPv6 address"),
    ([Addr6(STABLE, ifname="eth0")], "eth1", "no IPv6 address on eth1"),
    ([Addr6("fd00::2", ifname="eth0"), Addr6("fe80::1", ifname="eth0")], None,
     "no stable global IPv6 address (fd00::2: unique local"),
])
def test_select_problem(addrs: list[Addr6], interface: str | None, problem: str) -> None:
    s = select(addrs, interface)
    assert s.address is None and s.problem is not None and problem in s.problem


@pytest.mark.parametrize("address, plen, iid, want", [
    ("2600:1:1::201", 64, "::99", "2600:1:1::99"),
    ("2600:1:2::201", 64, "::99", "2600:1:2::99"),
    ("2a01:4f8:1:2:5054:ff:fe12:3456", 64, "::5054:ff:fe00:1", "2a01:4f8:1:2:5054:ff:fe00:1"),
    ("2a01:4f8:1:2::1", 56, "::1:0:0:0:99", "2a01:4f8:1:1::99"),
])
def test_combine(address: str, plen: int, iid: str, want: str) -> None:
    assert combine(address, plen, iid) == want


@pytest.mark.parametrize("spec, want", [
    ("::201", "::201"),
    ("mac:52:54:00:12:34:56", "::5054:ff:fe12:3456"),
    ("MAC:00-11-22-33-44-55", "::211:22ff:fe33:4455"),
])
def test_interface_id(spec: str, want: str) -> None:
    assert interface_id(spec) == want


@pytest.mark.parametrize("spec", ["2600:1:1::201", "mac:52:54:00", "nonsense"])
def test_interface_id_refuses(spec: str) -> None:
    with pytest.raises(ValueError):
        interface_id(spec)


def test_eui64_flips_the_universal_local_bit() -> None:
    assert eui64("02:00:00:00:00:01") == "::ff:fe00:1"


def test_from_ip_json_reads_flags_and_lifetimes() -> None:
    links = [{"ifname": "lo", "addr_info": [{"family": "inet6", "local": "::1", "prefixlen": 128}]},
             {"ifname": "eth0", "addr_info": [
                 {"family": "inet", "local": "10.0.1.201", "prefixlen": 24},
                 {"family": "inet6", "local": "2a01:4f8:1:2::201", "prefixlen": 64, "scope": "global",
                  "temporary": True, "dynamic": True, "valid_life_time": 600, "preferred_life_time": 300},
                 {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link",
                  "valid_life_time": FOREVER, "preferred_life_time": FOREVER}]}]
    got = from_ip_json(links)
    assert [a.address for a in got] == ["2a01:4f8:1:2::201", "fe80::1"]
    assert got[0].flags == {"temporary", "dynamic"} and (got[0].preferred_lft, got[0].valid_lft) == (300, 600)
    assert got[1].ifname == "eth0"
