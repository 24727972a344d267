"""The doctor's per-family line (natlink.doctor.family_line): table tests over check results."""

from __future__ import annotations

import pytest

from natlink.doctor.family_line import family_line
from natlink.doctor.model import fail, ok, skipped

CGNAT_WAN = fail(3, "wan", "the router reports no external address", "ask the ISP", cause="no-wan",
                 data={"router_wan": None})
SHARED_WAN = fail(3, "wan", "100.64.0.7 is carrier-grade NAT", "ask the ISP", cause="cgnat",
                  data={"router_wan": "100.64.0.7"})
PUBLIC_WAN = ok(3, "wan", "the router's WAN address 11.0.0.2 is public", data={"router_wan": "11.0.0.2"})
V4_OK = ok(8, "probe", "web (ipv4) reachable", data={"family": "ipv4"})
V6_PROBE_OK = ok(8, "probe", "web (ipv6) reachable", data={"family": "ipv6"})
V6_OUT_OK = ok(10, "ipv6-outside", "the reflector connected over IPv6")
V6_OUT_FAIL = fail(10, "ipv6-outside", "timeout", "run natlink map", cause="timeout")
V6_OUT_SKIP = skipped(10, "ipv6-outside", "no outside IPv6 connect tried")
IPV6_ONLY = "IPv4 is carrier-grade NAT; IPv6 is open — clients need IPv6"


@pytest.mark.parametrize("results, line", [
    ([CGNAT_WAN, V6_OUT_OK], IPV6_ONLY),
    ([SHARED_WAN, V6_PROBE_OK], IPV6_ONLY),
    ([CGNAT_WAN, V6_PROBE_OK, V6_OUT_OK], IPV6_ONLY),
    ([PUBLIC_WAN, V4_OK, V6_OUT_OK], "IPv4 and IPv6 are open — every client can connect"),
    ([CGNAT_WAN, V6_OUT_FAIL], "IPv4 is carrier-grade NAT (or another NAT: the router reports no external address); "
                               "IPv6 is not reachable from outside"),
    ([PUBLIC_WAN, V4_OK, V6_OUT_FAIL], "IPv4 is open; IPv6 is not reachable from outside"),
    ([PUBLIC_WAN, V6_OUT_OK], "IPv4 was not proven reachable from outside; IPv6 is open — clients need IPv6"),
    ([CGNAT_WAN, V6_OUT_SKIP], None),  # no IPv6 checked from outside: nothing to join
    ([PUBLIC_WAN, V4_OK], None),
])
def test_family_line(results: list, line: str | None) -> None:
    assert family_line(results) == line
