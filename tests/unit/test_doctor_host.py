"""Link 9 verdicts over host facts (pure), and reading the real facts of this machine."""

from __future__ import annotations

import resource
from dataclasses import replace

import pytest

from natlink.doctor.checks_host import (
    HostFacts, check_keepalive, check_memory, check_nofile, check_port_range, check_somaxconn,
    gather_host_facts, host_checks, recommend_keepalive,
)
from natlink.doctor.model import Status

BASE = HostFacts(nofile_soft=1024, nofile_hard=524288, port_range=(32768, 60999), tw_reuse=2, somaxconn=4096,
                 keepalive_time=7200, keepalive_intvl=75, keepalive_probes=9, rmem_default=131072,
                 wmem_default=16384, tcp_mem_max_pages=575796, mem_available=8 * 2**30)


@pytest.mark.parametrize("soft,hard,expected,status,needle", [
    (1024, 524288, 1000, Status.WARN, "LimitNOFILE=1064"),  # the classic default soft limit
    (1024, 1024, 1000, Status.WARN, "limits.conf"),
    (65536, 65536, 1000, Status.OK, "covers 1000"),
    (1064, 1064, 1000, Status.OK, "covers"),
    (resource.RLIM_INFINITY, resource.RLIM_INFINITY, 10**6, Status.OK, "unlimited"),
    (1024, resource.RLIM_INFINITY, 5000, Status.WARN, "LimitNOFILE=5064"),
])
def test_nofile(soft, hard, expected, status, needle) -> None:
    result = check_nofile(replace(BASE, nofile_soft=soft, nofile_hard=hard), expected)
    assert result.status is status
    assert needle in result.finding + result.fix


@pytest.mark.parametrize("port_range,expected,status", [
    ((32768, 60999), 1000, Status.OK), ((32768, 60999), 50000, Status.WARN), ((60000, 60100), 200, Status.WARN),
])
def test_port_range(port_range, expected, status) -> None:
    result = check_port_range(replace(BASE, port_range=port_range), expected)
    assert result.status is status and str(port_range[0]) in result.finding


@pytest.mark.parametrize("somaxconn,status", [(128, Status.WARN), (1024, Status.OK), (4096, Status.OK)])
def test_somaxconn(somaxconn, status) -> None:
    assert check_somaxconn(replace(BASE, somaxconn=somaxconn), 1000).status is status


@pytest.mark.parametrize("expected,mem,status", [
    (1000, 8 * 2**30, Status.OK),  # ~141 MiB of buffers
    (1000, 200 * 2**20, Status.WARN),  # more than half of what is available
    (100000, 64 * 2**30, Status.WARN),  # beyond tcp_mem (~2.2 GiB)
])
def test_memory(expected, mem, status) -> None:
    result = check_memory(replace(BASE, mem_available=mem), expected)
    assert result.status is status and "144 KiB each" in result.finding


@pytest.mark.parametrize("keepalive,nat,status,needle", [
    (7200, None, Status.OK, "--measure-nat-timeout"),  # RFC 5382 NATs keep ≥ 7440 s
    (9000, None, Status.WARN, "tcp_keepalive_time=4440"),
    (7200, 300.0, Status.WARN, "every 180 s"),  # a typical home router
    (7200, 20.0, Status.WARN, "every 10 s"),
    (60, 300.0, Status.OK, "below the NAT"),
])
def test_keepalive(keepalive, nat, status, needle) -> None:
    result = check_keepalive(replace(BASE, keepalive_time=keepalive), nat)
    assert result.status is status
    assert needle in result.finding + result.fix


@pytest.mark.parametrize("nat,rec", [(20, 10), (18.6, 10), (10, 6), (3, 1), (300, 180), (7440, 4440), (1, 1)])
def test_recommend_keepalive_is_below_timeout(nat, rec) -> None:
    assert recommend_keepalive(nat) == rec
    assert rec < nat or nat <= 1


def test_real_host_facts_are_read() -> None:
    facts = gather_host_facts()
    assert facts.nofile_soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    with open("/proc/sys/net/ipv4/tcp_keepalive_time") as fh:
        assert facts.keepalive_time == int(fh.read())
    assert facts.port_range is not None and facts.port_range[0] < facts.port_range[1]
    results = host_checks(facts, 1000, None)
    assert [r.check for r in results] == ["nofile", "ephemeral-ports", "tcp-tw-reuse", "somaxconn", "tcp-memory",
                                          "keepalive"]
    assert all(r.link == 9 and r.finding for r in results)
