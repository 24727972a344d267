"""The record-API base: pure decisions as tables, then every record-API provider through the real updater
and state store against its strict fake — a stable address costs zero requests, a new IPv4 touches only
the A record, and no secret reaches the log (DEBUG), the state files, the result or a repr."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any, Callable

import pytest

from api_fakes import IP, IP2, IP6, PATH_ANY, FakeBase
from natlink.ddns.recordapi import Hints, Name, Record, by_status, plan, split_name
from natlink.ddns.updater import update_all
from natlink.publicip import PublicIpReport
from natlink.state import StateStore
from test_ddns_alidns import KEY_ID, SECRET, AliFake
from test_ddns_desec import TOKEN as DESEC_TOKEN, DesecFake
from test_ddns_digitalocean import TOKEN as DO_TOKEN, DigitaloceanFake
from test_ddns_dnspod import SECRET_ID, SECRET_KEY, DnspodFake
from test_ddns_fakes import load, write_secret
from test_ddns_gandi import PAT, GandiFake
from test_ddns_porkbun import API_KEY, SECRET_KEY as PORKBUN_SECRET, PorkbunFake

NOW = 1_700_000_000.0


@pytest.mark.parametrize("hostname, zone, expected", [
    ("home.example.com", None, Name("home.example.com", "example.com", "home")),
    ("Example.COM.", None, Name("example.com", "example.com", "")),
    ("a.b.example.com.cn", "example.com.cn", Name("a.b.example.com.cn", "example.com.cn", "a.b")),
    ("example.com.cn", "example.com.cn.", Name("example.com.cn", "example.com.cn", "")),
])
def test_split_name(hostname: str, zone: str | None, expected: Name) -> None:
    assert split_name(hostname, zone) == expected


def test_split_name_outside_the_zone() -> None:
    with pytest.raises(ValueError, match="not inside zone"):
        split_name("home.example.org", "example.com")
    with pytest.raises(ValueError):
        split_name("badexample.com", "example.com")


@pytest.mark.parametrize("values, expected", [
    ([], "create"), ([IP], "nochg"), ([IP, IP], "nochg"), ([IP2], "change"), ([IP2, "11.0.0.9"], "change"),
    ([IP, IP2], "extra"), ([IP2, IP], "extra"),
])
def test_plan(values: list[str], expected: str) -> None:
    assert plan([Record(v) for v in values], IP) == expected


@pytest.mark.parametrize("status, retry_after, outcome, kind, per_name", [
    (401, None, "auth", "fatal", False), (403, None, "auth", "fatal", False),
    (404, None, "nozone", "fatal", True), (400, None, "rejected", "fatal", False),
    (422, None, "rejected", "fatal", False), (429, "7", "rate-limited", "transient", False),
    (500, None, "http-500", "transient", False), (503, None, "http-503", "transient", False),
])
def test_by_status(status: int, retry_after: str | None, outcome: str, kind: str, per_name: bool) -> None:
    result = by_status("X", status, "detail", retry_after, Hints("fix auth", "fix zone", "fix request"))
    assert (result.outcome, result.kind, result.per_name) == (outcome, kind, per_name)
    assert result.retry_after == (7.0 if retry_after else None)
    assert result.message.startswith("X") and "detail" in result.message


# provider -> (fake factory, server path, secrets, extra keys, relative name of home.example.com in the fake)
PROVIDERS: dict[str, tuple[Callable[[], FakeBase], str, dict[str, str], str, str]] = {
    "alidns": (AliFake, "", {"access_key_secret": SECRET}, f'access_key_id = "{KEY_ID}"\n', "home"),
    "dnspod": (DnspodFake, "", {"secret_key": SECRET_KEY}, f'secret_id = "{SECRET_ID}"\n', "home"),
    "desec": (DesecFake, "/api/v1", {"token": DESEC_TOKEN}, "", "home"),
    "porkbun": (PorkbunFake, "/api/json/v3", {"api_key": API_KEY, "secret_api_key": PORKBUN_SECRET}, "", "home"),
    "gandi": (GandiFake, "/v5/livedns", {"token": PAT}, "", "home"),
    "digitalocean": (DigitaloceanFake, "/v2", {"token": DO_TOKEN}, "", "home"),
}


def _report(v4: str, v6: str | None) -> PublicIpReport:
    return PublicIpReport(public_ipv4=v4, public_ipv6=v6, router_wan_ipv4=v4, verdict="public")


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_rounds_through_the_updater_without_leaking_secrets(provider: str, tmp_path: Path, httpserver: Any,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    make_fake, path, secrets, extra, rel = PROVIDERS[provider]
    fake = make_fake()
    httpserver.expect_request(PATH_ANY).respond_with_handler(fake.handler)
    keys = "".join(f'{k}_file = "{write_secret(tmp_path, k, v)}"\n' for k, v in secrets.items())
    cfg = load(tmp_path, f'[[ddns]]\nname = "e"\nprovider = "{provider}"\nhostnames = ["home.example.com"]\n'
                         f'server = "{httpserver.url_for(path).rstrip("/")}"\nipv6 = true\n{keys}{extra}'
                         # no DNS serves example.com here (the live-record check would ask it); the API
                         # read-back of verify is tested per provider
                         'verify = false\n')
    store = StateStore(cfg.service.state_dir)
    caplog.set_level(logging.DEBUG)

    def round_(v4: str, at: float) -> Any:
        (result,) = update_all(cfg, store, _report(v4, IP6), now=at, rng=random.Random(1))
        return result

    first = round_(IP, NOW)
    assert (first.action, first.kind, first.outcome) == ("update", "success", "created"), first.message
    sent = len(fake.requests)
    assert round_(IP, NOW + 300).action == "skip" and len(fake.requests) == sent  # stable: zero requests
    third = round_(IP2, NOW + 600)
    assert third.kind == "success" and fake.values(rel, "A") == [IP2] and fake.values(rel, "AAAA") == [IP6]
    assert fake.problems == []

    # A refused credential (the wrong value starts with the right one, so neither may show): fatal.
    for key, value in secrets.items():
        write_secret(tmp_path, key, value + "-rotated-wrong")
    refused = round_("11.0.0.9", NOW + 900)
    assert (refused.fatal, refused.outcome) == (True, "auth"), refused.message
    leaked = [caplog.text, str(refused.to_json()), repr(first), repr(third)]
    leaked += [p.read_text() for p in Path(cfg.service.state_dir).rglob("*") if p.is_file()]
    for value in secrets.values():
        for text in leaked:
            assert value not in text
