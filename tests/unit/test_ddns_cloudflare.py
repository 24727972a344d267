"""Cloudflare API v4 against a stateful local fake: find zone, create if missing, update keeping TTL/proxied,
no write when unchanged, and every error class mapped to a typed outcome."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from natlink.ddns.cloudflare import CloudflareProvider, base_url
from natlink.secrets import read_secret
from test_ddns_fakes import CF_TOKEN, CloudflareFake, load, write_secret

IP, IP2, IP6 = "11.0.0.2", "11.0.0.3", "2001:470:1f0b::5"


def _provider(tmp_path: Path, httpserver: Any, fake: CloudflareFake, extra: str = "",
              token: str = CF_TOKEN, hostname: str = "home.example.com") -> CloudflareProvider:
    httpserver.expect_request(re.compile(r"/client/v4/.*")).respond_with_handler(fake.handler)
    tok = write_secret(tmp_path, "cf", token)
    entry = load(tmp_path, f'[[ddns]]\nname = "cf"\nprovider = "cloudflare"\nhostnames = ["{hostname}"]\n'
                           f'server = "{httpserver.url_for("/client/v4")}"\napi_token_file = "{tok}"\n'
                           f'{extra}').ddns[0]
    return CloudflareProvider(entry, {"api_token": read_secret(entry.secrets["api_token"])})


def test_creates_missing_record_with_defaults(tmp_path: Path, httpserver: Any) -> None:
    fake = CloudflareFake()
    result = _provider(tmp_path, httpserver, fake).update({4: IP})
    assert result.outcome == "created" and result.ok
    (record,) = fake.records.values()
    assert (record["name"], record["type"], record["content"], record["ttl"], record["proxied"]) == \
        ("home.example.com", "A", IP, 1, False)
    assert fake.problems == []


def test_updates_content_and_keeps_ttl_and_proxied(tmp_path: Path, httpserver: Any) -> None:
    fake = CloudflareFake()
    rid = fake.add_record("home.example.com", "A", IP, ttl=120, proxied=True)
    result = _provider(tmp_path, httpserver, fake).update({4: IP2})
    assert result.outcome == "good"
    assert fake.records[rid] == {**fake.records[rid], "content": IP2, "ttl": 120, "proxied": True}
    assert [m for m, _, _ in fake.requests].count("PATCH") == 1


def test_no_write_when_record_already_holds_the_address(tmp_path: Path, httpserver: Any) -> None:
    fake = CloudflareFake()
    fake.add_record("home.example.com", "A", IP)
    result = _provider(tmp_path, httpserver, fake).update({4: IP})
    assert result.outcome == "nochg"
    assert [m for m, _, _ in fake.requests] == ["GET", "GET", "GET"]  # zone suffix walk + record list


def test_zone_option_and_aaaa(tmp_path: Path, httpserver: Any) -> None:
    fake = CloudflareFake()
    provider = _provider(tmp_path, httpserver, fake, extra='zone = "example.com"\nttl = "5m"\nproxied = false\n')
    assert provider.update({4: IP, 6: IP6}).ok
    types = sorted((r["type"], r["content"], r["ttl"]) for r in fake.records.values())
    assert types == [("A", IP, 300), ("AAAA", IP6, 300)]
    assert fake.requests[0] == ("GET", "/client/v4/zones", {"name": "example.com"})
    assert provider.verify({4: IP, 6: IP6}) is None


def test_verify_reports_a_mismatch(tmp_path: Path, httpserver: Any) -> None:
    fake = CloudflareFake()
    fake.add_record("home.example.com", "A", IP2)
    problem = _provider(tmp_path, httpserver, fake).verify({4: IP})
    assert problem is not None and IP2 in problem


def test_zone_not_visible_is_fatal(tmp_path: Path, httpserver: Any) -> None:
    result = _provider(tmp_path, httpserver, CloudflareFake(), hostname="home.other.org").update({4: IP})
    assert (result.outcome, result.kind) == ("nozone", "fatal")
    assert "home.other.org" in result.message


def test_wrong_token_is_fatal_and_never_shown(tmp_path: Path, httpserver: Any) -> None:
    result = _provider(tmp_path, httpserver, CloudflareFake(), token="cf-wrong-token-987").update({4: IP})
    assert (result.outcome, result.kind) == ("auth", "fatal")
    assert "cf-wrong-token-987" not in result.message and "Zone:DNS:Edit" in result.message


@pytest.mark.parametrize("status, payload, headers, outcome, kind", [
    (429, {"success": False, "errors": [{"code": 971, "message": "Please wait"}]}, {"Retry-After": "90"},
     "rate-limited", "transient"),
    (500, {"success": False, "errors": []}, {}, "http-500", "transient"),
    (502, {}, {}, "http-502", "transient"),
    (400, {"success": False, "errors": [{"code": 1004, "message": "DNS Validation Error"}]}, {}, "rejected", "fatal"),
    (403, {"success": False, "errors": [{"code": 9109, "message": "Invalid access token"}]}, {}, "auth", "fatal"),
    (200, {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]}, {}, "auth", "fatal"),
])
def test_error_answers(tmp_path: Path, httpserver: Any, status: int, payload: dict[str, Any],
                       headers: dict[str, str], outcome: str, kind: str) -> None:
    fake = CloudflareFake(fail=(status, payload, headers))
    result = _provider(tmp_path, httpserver, fake).update({4: IP})
    assert (result.outcome, result.kind) == (outcome, kind), result.message
    if headers.get("Retry-After"):
        assert result.retry_after == 90


@pytest.mark.parametrize("server, url", [
    (None, "https://api.cloudflare.com/client/v4"),
    ("http://127.0.0.1:9/client/v4/", "http://127.0.0.1:9/client/v4"),
    ("api.example.test", "https://api.example.test/client/v4"),
])
def test_base_url(server: str | None, url: str) -> None:
    assert base_url(server) == url
