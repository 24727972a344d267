"""Public IP sources against local echo servers: strict plain-text parsing (HTML, two addresses), timeouts,
concurrency, disagreement, and a router that reports a CGNAT address (miniupnpd cannot, other firmware does)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from natlink.config import parse_config
from natlink.publicip import detect
from natlink.publicip.sources import parse_echo_body, pick_interface_address, query_echo, query_interface

PARSE = [
    (b"11.0.0.2\n", None, "11.0.0.2", None),
    (b"  11.0.0.2  ", "text/plain; charset=utf-8", "11.0.0.2", None),
    (b"2001:470:1f0b::5\n", None, "2001:470:1f0b::5", None),
    (b"<html><body>11.0.0.2</body></html>", "text/html", None, "text/html"),
    (b"<html>11.0.0.2</html>", None, None, "not an IP address"),
    (b"11.0.0.2 11.0.0.3", None, None, "2 words"),
    (b"11.0.0.2\n11.0.0.3\n", None, None, "2 words"),
    (b"Your IP is 11.0.0.2", None, None, "4 words"),
    (b"", None, None, "empty"),
    (b"11.0.0.256", None, None, "not an IP address"),
    (b"\xff\xfe", None, None, "non-ASCII"),
    (b"1" * 200, None, None, "200 bytes"),
]


@pytest.mark.parametrize("body, ctype, address, why", PARSE)
def test_parse_echo_body(body: bytes, ctype: str | None, address: str | None, why: str | None) -> None:
    got, reason = parse_echo_body(body, ctype)
    assert got == address
    assert (why is None and reason is None) or (why is not None and why in (reason or ""))


IFACE = [
    ("global v4", [{"family": "inet", "local": "11.0.0.2", "scope": "global"}], 4, "11.0.0.2"),
    ("skips v6 temporary and deprecated", [
        {"family": "inet6", "local": "2001:470::aaaa", "scope": "global", "temporary": True},
        {"family": "inet6", "local": "2001:470::bbbb", "scope": "global", "deprecated": True},
        {"family": "inet6", "local": "2001:470::5", "scope": "global", "mngtmpaddr": True},
        {"family": "inet6", "local": "fe80::1", "scope": "link"},
    ], 6, "2001:470::5"),
    ("only link-local", [{"family": "inet6", "local": "fe80::1", "scope": "link"}], 6, None),
    ("tentative skipped", [{"family": "inet6", "local": "2001:470::7", "scope": "global", "tentative": True}], 6,
     None),
    ("family filter", [{"family": "inet6", "local": "2001:470::5", "scope": "global"}], 4, None),
]


@pytest.mark.parametrize("name, info, family, expected", IFACE, ids=[i[0] for i in IFACE])
def test_pick_interface_address(name: str, info: list[dict[str, Any]], family: int, expected: str | None) -> None:
    assert pick_interface_address(info, family) == expected


def test_interface_source_reads_loopback_free_host() -> None:
    answer = query_interface("lo", 4)  # lo is excluded on purpose: it is never a public address
    assert answer.address is None and answer.error


def test_missing_interface_is_an_error_not_a_crash() -> None:
    answer = query_interface("natlink-nonexistent0", 4)
    assert answer.address is None and answer.error


def test_missing_interface_is_named() -> None:
    assert query_interface("natlink-nonexistent0", 6).error == "no interface natlink-nonexistent0"


def _echo(httpserver: Any, path: str, body: str, content_type: str = "text/plain", delay: float = 0.0,
          status: int = 200) -> str:
    def handler(request: Request) -> Response:
        if delay:
            threading.Event().wait(delay)
        return Response(body, status=status, content_type=content_type)
    httpserver.expect_request(path).respond_with_handler(handler)
    return httpserver.url_for(path)


def test_query_echo_timeout_and_http_error(httpserver: Any) -> None:
    slow = _echo(httpserver, "/slow", "11.0.0.2", delay=1.5)
    answer = query_echo(slow, 4, timeout=0.3)
    assert answer.address is None and "0.3s" in (answer.error or "")
    broken = _echo(httpserver, "/500", "11.0.0.2", status=500)
    assert query_echo(broken, 4, timeout=2).error == "HTTP 500"


def _cfg(tmp_path: Path, sources: list[str], quorum: int = 0, timeout: float = 2.0) -> Any:
    listed = ", ".join(f'"{s}"' for s in sources)
    text = (f'[router]\ntimeout = 1\n[public_ip]\nsources = [{listed}]\nquorum = {quorum}\ntimeout = {timeout}\n'
            f'[service]\nstate_dir = "{tmp_path}"\n')
    return parse_config(text, tmp_path / "c.toml")


class FakeRouter:
    """Stands in for firmware that reports its WAN address as-is (miniupnpd in the lab cannot report 100.64/10)."""

    def __init__(self, wan: str | None) -> None:
        self.wan = wan

    def external_ip(self) -> str | None:
        return self.wan


def test_detect_agreeing_sources(tmp_path: Path, httpserver: Any) -> None:
    a = _echo(httpserver, "/a", "11.0.0.2\n")
    b = _echo(httpserver, "/b", "11.0.0.2")
    r = detect(_cfg(tmp_path, ["router", a, b]), router=FakeRouter("11.0.0.2"))
    assert (r.public_ipv4, r.router_wan_ipv4, r.verdict, r.problem) == ("11.0.0.2", "11.0.0.2", "public", None)
    assert all(s.accepted for s in r.sources)


def test_detect_disagreement_html_and_two_addresses(tmp_path: Path, httpserver: Any) -> None:
    a = _echo(httpserver, "/a", "11.0.0.2")
    b = _echo(httpserver, "/b", "11.0.0.9")
    html = _echo(httpserver, "/html", "<html><body>11.0.0.2</body></html>", content_type="text/html")
    two = _echo(httpserver, "/two", "11.0.0.2, 11.0.0.3")
    r = detect(_cfg(tmp_path, [a, b, html, two]), router=None)
    assert r.public_ipv4 is None and "disagree" in (r.problem or "")
    by_source = {s.source: s for s in r.sources}
    assert by_source[html].address is None and "text/html" in (by_source[html].error or "")
    assert by_source[two].address is None and "2 words" in (by_source[two].error or "")


def test_detect_quorum_outvotes_a_wrong_source(tmp_path: Path, httpserver: Any) -> None:
    urls = [_echo(httpserver, "/a", "11.0.0.2"), _echo(httpserver, "/b", "11.0.0.2"),
            _echo(httpserver, "/c", "11.0.0.9")]
    assert detect(_cfg(tmp_path, urls, quorum=2)).public_ipv4 == "11.0.0.2"


@pytest.fixture
def threaded_server() -> Any:
    from pytest_httpserver import HTTPServer
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_detect_asks_sources_concurrently(tmp_path: Path, threaded_server: Any) -> None:
    """All echo requests are in flight at once (the server sees them overlap); a hung one only times out."""
    in_flight, peak, lock = [0], [0], threading.Lock()
    release = threading.Event()

    def handler(request: Request) -> Response:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            if peak[0] >= 3:
                release.set()
        release.wait(5)  # nobody answers until three requests overlap
        with lock:
            in_flight[0] -= 1
        return Response("11.0.0.2", content_type="text/plain")

    for i in range(3):
        threaded_server.expect_request(f"/s{i}").respond_with_handler(handler)
    urls = [threaded_server.url_for(f"/s{i}") for i in range(3)]
    hung = _echo(threaded_server, "/hung", "11.0.0.2", delay=3)
    r = detect(_cfg(tmp_path, [*urls, hung], timeout=1.0))
    assert peak[0] >= 3
    assert r.public_ipv4 == "11.0.0.2"
    assert next(s for s in r.sources if s.source == hung).error


def test_detect_router_in_cgnat(tmp_path: Path, httpserver: Any) -> None:
    echo = _echo(httpserver, "/a", "11.0.0.2")
    r = detect(_cfg(tmp_path, ["router", echo]), router=FakeRouter("100.64.12.34"))
    assert (r.verdict, r.router_wan_ipv4, r.public_ipv4) == ("cgnat", "100.64.12.34", "11.0.0.2")
    assert "100.64.12.34" in (r.problem or "") and "ISP" in (r.problem or "")


def test_detect_private_echo_answer_is_not_a_public_ip(tmp_path: Path, httpserver: Any) -> None:
    echo = _echo(httpserver, "/a", "192.168.1.7")
    r = detect(_cfg(tmp_path, ["router", echo]), router=FakeRouter("192.168.1.7"))
    assert r.public_ipv4 is None and r.verdict == "double-nat"


def test_detect_router_failure_is_reported_not_raised(tmp_path: Path, httpserver: Any) -> None:
    echo = _echo(httpserver, "/a", "11.0.0.2")

    def no_router(_cfg: Any) -> Any:
        raise RuntimeError("no router answered within 1s")

    r = detect(_cfg(tmp_path, ["router", echo]), open_router=no_router)
    router = next(s for s in r.sources if s.source == "router")
    assert router.error == "no router answered within 1s"
    assert r.public_ipv4 == "11.0.0.2" and r.verdict == "unknown"
