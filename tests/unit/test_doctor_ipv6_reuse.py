"""Link 10 takes link 8's IPv6 probe of a mapping instead of asking the reflector a second time."""

from __future__ import annotations

from types import SimpleNamespace

from natlink.doctor.checks_ipv6 import reuse_probes
from natlink.doctor.model import fail, ok

WEB = SimpleNamespace(name="web", internal_port=8080, protocol="tcp")
NO_PROBES = SimpleNamespace(probes=())  # outside() then has no reflector to ask: None


def test_link8_ipv6_probe_is_reused() -> None:
    results = [ok(8, "probe", "web0 ipv4", data={"family": "ipv4", "mapping": "web", "outcome": "open",
                                                  "seen_as": "11.0.0.2"}),
               ok(8, "probe", "web0 ipv6", data={"family": "ipv6", "mapping": "web", "outcome": "open",
                                                  "seen_as": "2600:1:1::201"})]
    assert reuse_probes(results)(NO_PROBES, WEB) == ("open", "2600:1:1::201")


def test_a_failed_checker_hands_on_its_sentence() -> None:
    results = [fail(8, "probe", "web0", "fix", data={"family": "ipv6", "mapping": "web", "outcome": "error",
                                                      "detail": "checker-error: the reflector answered HTTP 503"})]
    assert reuse_probes(results)(NO_PROBES, WEB) == ("error", "checker-error: the reflector answered HTTP 503")


def test_without_an_ipv6_probe_link10_dials_itself() -> None:
    other = [ok(8, "probe", "x", data={"family": "ipv6", "mapping": "ssh", "outcome": "open", "seen_as": "::1"})]
    assert reuse_probes(other)(NO_PROBES, WEB) is None  # outside(): no [[probe]] for "web"
