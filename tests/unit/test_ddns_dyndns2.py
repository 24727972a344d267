"""dyndns2 family (custom dyndns2, noip, oray, dynu) against a strict local server: every documented answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from natlink.ddns import registry
from natlink.ddns.dyndns2 import Dyndns2Provider, endpoint, parse_answer
from natlink.net.http import HttpClient
from natlink.secrets import read_secret
from test_ddns_fakes import PASSWORD, Dyndns2Fake, dyndns2_toml, load, write_secret

IP = "11.0.0.2"
IP6 = "2001:470:1f0b::5"

# (answer body, HTTP status, extra headers, expected outcome, expected kind)
CODES = [
    ("good {ip}", 200, {}, "good", "success"),
    ("nochg {ip}", 200, {}, "nochg", "success"),
    ("good 198.51.100.77", 200, {}, "mismatch", "transient"),  # provider recorded another address
    ("badauth", 401, {}, "badauth", "fatal"),
    ("badauth", 200, {}, "badauth", "fatal"),
    ("!donator", 200, {}, "!donator", "fatal"),
    ("notfqdn", 200, {}, "notfqdn", "fatal"),
    ("nohost", 200, {}, "nohost", "fatal"),
    ("numhost", 200, {}, "numhost", "fatal"),
    ("abuse", 200, {}, "abuse", "fatal"),
    ("badagent", 200, {}, "badagent", "fatal"),
    ("!yours", 200, {}, "!yours", "fatal"),
    ("dnserr", 200, {}, "dnserr", "transient"),
    ("911", 200, {}, "911", "transient"),
    ("", 500, {}, "http-500", "transient"),
    ("", 503, {}, "http-503", "transient"),
    ("slow down", 429, {"Retry-After": "600"}, "http-429", "transient"),
    ("", 404, {}, "http-404", "fatal"),
    ("<html><body>Login</body></html>", 200, {}, "unexpected", "transient"),
]


def _provider(tmp_path: Path, httpserver: Any, preset: str, fake: Dyndns2Fake,
              hostnames: tuple[str, ...] = ("host.example.net",), timeout: float = 5.0) -> Dyndns2Provider:
    httpserver.expect_request(fake.path).respond_with_handler(fake.handler)
    pw = write_secret(tmp_path, "pw", PASSWORD)
    cfg = load(tmp_path, dyndns2_toml(preset, httpserver.url_for("/"), pw, hostnames))
    entry = cfg.ddns[0]
    return registry.PROVIDERS[preset].make(entry, {"password": read_secret(entry.secrets["password"])},
                                           http=HttpClient(timeout=timeout))


DYNDNS2 = sorted(n for n, spec in registry.PROVIDERS.items() if spec.factory.endswith(":Dyndns2Provider"))


def fake_for(preset: str, **kw: Any) -> Dyndns2Fake:
    spec = registry.PROVIDERS[preset]
    return Dyndns2Fake(path=spec.preset["path"], ipv6_param=spec.preset["ipv6"] if spec.supports_ipv6 else None,
                       extra=dict(spec.preset.get("extra", {})), **kw)


@pytest.mark.parametrize("preset", DYNDNS2)
@pytest.mark.parametrize("body, status, headers, outcome, kind", CODES)
def test_every_documented_answer(tmp_path: Path, httpserver: Any, preset: str, body: str, status: int,
                                 headers: dict[str, str], outcome: str, kind: str) -> None:
    fake = fake_for(preset, answer=body, status=status, headers=headers)
    result = _provider(tmp_path, httpserver, preset, fake).update({4: IP})
    assert fake.problems == []
    assert fake.requests == [{"hostname": "host.example.net", "myip": IP, **fake.extra}]
    assert (result.outcome, result.kind) == (outcome, kind), result.message
    if status == 429:
        assert result.retry_after == 600
    assert PASSWORD not in result.message


def test_timeout_is_transient(tmp_path: Path, httpserver: Any) -> None:
    fake = Dyndns2Fake(delay=1.5)
    result = _provider(tmp_path, httpserver, "noip", fake, timeout=0.3).update({4: IP})
    assert (result.outcome, result.kind) == ("timeout", "transient")
    assert "0.3s" in result.message


def test_connection_refused_is_transient(tmp_path: Path) -> None:
    import socket
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pw = write_secret(tmp_path, "pw", PASSWORD)
    entry = load(tmp_path, dyndns2_toml("dynu", f"http://127.0.0.1:{port}", pw)).ddns[0]
    result = Dyndns2Provider(entry, {"password": read_secret(entry.secrets["password"])},
                             spec=registry.PROVIDERS["dynu"]).update({4: IP})
    assert (result.outcome, result.kind) == ("connect", "transient")


@pytest.mark.parametrize("preset, expected", [
    ("noip", {"hostname": "host.example.net", "myip": IP, "myipv6": IP6}),
    ("dynu", {"hostname": "host.example.net", "myip": IP, "myipv6": IP6}),
    ("dyndns2", {"hostname": "host.example.net", "myip": f"{IP},{IP6}"}),
])
def test_ipv6_parameters(tmp_path: Path, httpserver: Any, preset: str, expected: dict[str, str]) -> None:
    fake = fake_for(preset, answer="good")
    result = _provider(tmp_path, httpserver, preset, fake).update({4: IP, 6: IP6})
    assert fake.problems == [] and fake.requests == [expected]
    assert result.ok


def test_oray_ipv6_only_is_refused_without_a_request(tmp_path: Path, httpserver: Any) -> None:
    fake = Dyndns2Fake(path="/ph/update", ipv6_param=None)
    result = _provider(tmp_path, httpserver, "oray", fake).update({6: IP6})
    assert result.kind == "fatal" and "IPv6" in result.message
    assert fake.requests == []


def test_one_request_per_name_and_stop_at_first_entry_wide_fatal(tmp_path: Path, httpserver: Any) -> None:
    ok = Dyndns2Fake(answer="nochg {ip}")
    provider = _provider(tmp_path, httpserver, "noip", ok, hostnames=("a.example.net", "b.example.net"))
    assert provider.update({4: IP}).outcome == "nochg"
    assert [r["hostname"] for r in ok.requests] == ["a.example.net", "b.example.net"]
    ok.answer, ok.requests[:] = "badauth", []  # the same credentials for every name: asking again is pointless
    result = provider.update({4: IP})
    assert result.outcome == "badauth" and len(ok.requests) == 1


def test_a_per_name_fatal_answer_does_not_stop_the_other_names(tmp_path: Path, httpserver: Any) -> None:
    fake = Dyndns2Fake(answer="nohost")
    provider = _provider(tmp_path, httpserver, "noip", fake, hostnames=("a.example.net", "b.example.net"))
    result = provider.update({4: IP})
    assert [r["hostname"] for r in fake.requests] == ["a.example.net", "b.example.net"]
    assert [(p.hostname, p.outcome, p.per_name) for p in result.parts] == [
        ("a.example.net", "nohost", True), ("b.example.net", "nohost", True)]


@pytest.mark.parametrize("server, path, url", [
    ("https://dynupdate.no-ip.com", "/nic/update", "https://dynupdate.no-ip.com/nic/update"),
    ("https://dynupdate.no-ip.com/", "/nic/update", "https://dynupdate.no-ip.com/nic/update"),
    ("members.example.org", "/nic/update", "https://members.example.org/nic/update"),
    ("http://127.0.0.1:8080/custom/update", "/nic/update", "http://127.0.0.1:8080/custom/update"),
])
def test_endpoint(server: str, path: str, url: str) -> None:
    assert endpoint(server, path) == url


def test_parse_answer_accepts_good_without_echo() -> None:
    assert parse_answer(200, "good\n", {4: IP}, "X", "h").outcome == "good"
