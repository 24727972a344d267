"""DuckDNS against a strict local fake: OK / KO / verbose answers, HTTP errors, the token never in messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from natlink.ddns.duckdns import DuckdnsProvider, parse_answer, subdomain
from natlink.secrets import read_secret
from test_ddns_fakes import TOKEN, DuckFake, load, write_secret

IP = "11.0.0.2"


def _provider(tmp_path: Path, httpserver: Any, fake: DuckFake, hostnames: str = '"myhome.duckdns.org"',
              token: str = TOKEN) -> DuckdnsProvider:
    httpserver.expect_request("/update").respond_with_handler(fake.handler)
    tok = write_secret(tmp_path, "tok", token)
    entry = load(tmp_path, f'[[ddns]]\nname = "duck"\nprovider = "duckdns"\nhostnames = [{hostnames}]\n'
                           f'server = "{httpserver.url_for("/").rstrip("/")}"\ntoken_file = "{tok}"\n').ddns[0]
    return DuckdnsProvider(entry, {"token": read_secret(entry.secrets["token"])})


def test_update_then_nochange(tmp_path: Path, httpserver: Any) -> None:
    fake = DuckFake()
    provider = _provider(tmp_path, httpserver, fake)
    first = provider.update({4: IP})
    second = provider.update({4: IP})
    assert (first.outcome, second.outcome) == ("good", "nochg")
    assert fake.problems == []
    assert fake.requests[0] == {"domains": "myhome", "token": TOKEN, "ip": IP, "verbose": "true"}
    assert fake.current["ip"] == IP


def test_wrong_token_is_fatal_and_not_shown(tmp_path: Path, httpserver: Any) -> None:
    fake = DuckFake()
    result = _provider(tmp_path, httpserver, fake, token="wrong-token-value-123").update({4: IP})
    assert (result.outcome, result.kind) == ("ko", "fatal")
    assert "wrong-token-value-123" not in result.message and "token_file" in result.message


def test_foreign_domain_is_fatal(tmp_path: Path, httpserver: Any) -> None:
    result = _provider(tmp_path, httpserver, DuckFake(), hostnames='"someoneelse"').update({4: IP})
    assert result.kind == "fatal"


@pytest.mark.parametrize("status, body, outcome, kind", [
    (500, "", "http-500", "transient"),
    (502, "", "http-502", "transient"),
    (429, "", "http-429", "transient"),
    (401, "", "http-401", "fatal"),
    (404, "", "http-404", "fatal"),
    (200, "<html>maintenance</html>", "unexpected", "transient"),
    (200, "OK\n198.51.100.1\n\nUPDATED", "mismatch", "transient"),
])
def test_error_answers(tmp_path: Path, httpserver: Any, status: int, body: str, outcome: str, kind: str) -> None:
    fake = DuckFake(status=status, override=body)
    result = _provider(tmp_path, httpserver, fake).update({4: IP})
    assert (result.outcome, result.kind) == (outcome, kind)
    assert TOKEN not in result.message


def test_plain_ok_without_verbose_fields() -> None:
    assert parse_answer(200, "OK", {4: IP}).outcome == "good"


@pytest.mark.parametrize("name, sub", [("myhome", "myhome"), ("MyHome.duckdns.org.", "myhome"),
                                       ("a.b.duckdns.org", "a.b")])
def test_subdomain(name: str, sub: str) -> None:
    assert subdomain(name) == sub
