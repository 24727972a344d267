"""Pure verdicts of links 3, 4 and 7 over what portmap / publicip / DNS report."""

from __future__ import annotations

import pytest

from natlink.config import MappingCfg
from natlink.doctor.checks_dns import Lookup, dns_check
from natlink.doctor.checks_router import settle_unverified, mapping_checks, wan_check
from natlink.portmap.base import Mapping as RouterEntry
from natlink.doctor.model import CheckResult, Status
from natlink.publicip import judge
from natlink.publicip.verdict import SourceAnswer

RDP = MappingCfg(name="rdp", protocol="tcp", external_port=3390, internal_port=3389, internal_ip=None)
ME = "10.0.1.201"


@pytest.mark.parametrize("table,status,cause,needle", [
    ([RouterEntry("tcp", 3390, ME, 3389, "natlink:rdp", 3000)], Status.OK, None, "50 min left"),
    ([RouterEntry("tcp", 3390, ME, 3389, "", 0)], Status.OK, None, "permanent"),
    ([], Status.FAIL, "missing", "not on the router"),
    ([RouterEntry("udp", 3390, ME, 3389)], Status.FAIL, "missing", "not on the router"),
    ([RouterEntry("tcp", 4000, ME, 3389)], Status.FAIL, "missing", "found TCP 4000"),
    ([RouterEntry("tcp", 3390, "10.0.1.99", 3389, "games")], Status.FAIL, "other-host", "10.0.1.99:3389"),
    ([RouterEntry("tcp", 3390, ME, 22)], Status.FAIL, "wrong-port", "port 22"),
    ([RouterEntry("tcp", 3390, ME, 3389, enabled=False)], Status.FAIL, "disabled", "disabled"),
    (None, Status.WARN, "unverified", "cannot list"),
])
def test_mapping_checks(table, status, cause, needle) -> None:
    [result] = mapping_checks((RDP,), table, ME)
    assert (result.status, result.cause, result.subject) == (status, cause, "rdp")
    assert needle in result.finding


def test_a_record_is_never_proof_when_the_protocol_cannot_list() -> None:
    """natlink's own record of a NAT-PMP/PCP grant is not something seen in this run: unverified, with why."""
    [result] = mapping_checks((RDP,), None, ME, {"rdp": {"external_port": 3390}}, "natpmp")
    assert result.status is Status.WARN and result.cause == "unverified"
    assert "NAT-PMP cannot list" in result.finding and "[[probe]]" in result.fix and "UPnP" in result.fix


def test_unverified_mapping_fails_when_its_probe_failed_in_the_same_run() -> None:
    [unverified] = mapping_checks((RDP,), None, ME, None, "pcp")
    probe_failed = CheckResult(8, "probe", Status.FAIL, "rdp: refused", "fix", subject="rdp", cause="refused")
    probe_ok = CheckResult(8, "probe", Status.OK, "rdp: reachable", subject="rdp")
    [settled] = settle_unverified([unverified], [probe_failed])
    assert settled.status is Status.FAIL and "not confirmed by the router" in settled.finding
    assert settle_unverified([unverified], [probe_ok]) == [unverified]


def _report(router_wan: str | None, echo: str | None = None):
    answers = [SourceAnswer("router", "router", 4, address=router_wan)]
    if echo:
        answers.append(SourceAnswer("http://reflector (reflector)", "echo", 4, address=echo))
    return judge(answers, True)


@pytest.mark.parametrize("wan,echo,status,cause", [
    ("11.0.0.2", None, Status.OK, None),
    ("11.0.0.2", "11.0.0.2", Status.OK, None),
    ("100.64.0.2", None, Status.FAIL, "cgnat"),  # routers that do report their CGNAT address
    ("192.168.100.2", None, Status.FAIL, "double-nat"),
    (None, "100.64.0.2", Status.FAIL, "cgnat"),  # miniupnpd hides it; the reflector sees the carrier address
    (None, None, Status.FAIL, "no-wan"),
    ("11.0.0.2", "11.0.0.99", Status.FAIL, "wan-mismatch"),
])
def test_wan_check(wan, echo, status, cause) -> None:
    result = wan_check(_report(wan, echo), wan, echo)
    assert (result.status, result.cause) == (status, cause), result


@pytest.mark.parametrize("lookup,public,status,needle", [
    (Lookup("h.example", "ns", ("11.0.0.2",), 300), "11.0.0.2", Status.OK, "TTL 300 s"),
    (Lookup("h.example", "ns", ("11.0.0.9",), 600), "11.0.0.2", Status.FAIL, "resolves to 11.0.0.9"),
    (Lookup("h.example", "ns", ("11.0.0.2", "11.0.0.9"), 60), "11.0.0.2", Status.WARN, "also 11.0.0.9"),
    (Lookup("h.example", "ns", error="NXDOMAIN"), "11.0.0.2", Status.FAIL, "NXDOMAIN"),
    (Lookup("h.example", "ns", ("11.0.0.2",), 300), None, Status.SKIPPED, "unknown"),
])
def test_dns_check(lookup, public, status, needle) -> None:
    result = dns_check("home", lookup, public)
    assert result.status is status and needle in result.finding
    if status is Status.FAIL and lookup.addresses:
        assert public in result.finding and "600 s" in result.fix
