"""easyDNS against a strict local server: the dyndns2 request, easyDNS's answer words, and its 10-minute rule
kept by natlink itself (no request inside the interval, except with --force)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from natlink.ddns.updater import update_all
from natlink.publicip import PublicIpReport
from natlink.state import StateStore
from test_ddns_fakes import PASSWORD, Dyndns2Fake, dyndns2_toml, load, write_secret

NOW = 1_700_000_000.0
IP = "11.0.0.2"


def _setup(tmp_path: Path, httpserver: Any, answer: str, status: int = 200) -> tuple[Any, Dyndns2Fake, StateStore]:
    fake = Dyndns2Fake(path="/dyn/dyndns.php", ipv6_param="myip", answer=answer, status=status)
    httpserver.expect_request("/dyn/dyndns.php").respond_with_handler(fake.handler)
    cfg = load(tmp_path, dyndns2_toml("easydns", httpserver.url_for("/"), write_secret(tmp_path, "pw", PASSWORD)))
    return cfg, fake, StateStore(cfg.service.state_dir)


def _run(cfg: Any, store: StateStore, ip: str, at: float, **kw: Any) -> Any:
    report = PublicIpReport(public_ipv4=ip, public_ipv6=None, router_wan_ipv4=ip, verdict="public", problem=None)
    (result,) = update_all(cfg, store, report, now=at, rng=random.Random(1), **kw)
    return result


@pytest.mark.parametrize("answer, status, outcome, kind", [
    ("NOERROR", 200, "good", "success"),
    ("NOACCESS", 200, "badauth", "fatal"),
    ("NOSERVICE", 200, "noservice", "fatal"),
    ("ILLEGAL INPUT", 200, "illegal", "fatal"),
    ("TOOSOON", 200, "toosoon", "transient"),
    ("", 503, "http-503", "transient"),
    ("", 401, "badauth", "fatal"),
])
def test_every_documented_answer(tmp_path: Path, httpserver: Any, answer: str, status: int, outcome: str,
                                 kind: str) -> None:
    cfg, fake, store = _setup(tmp_path, httpserver, answer, status)
    result = _run(cfg, store, IP, NOW)
    assert fake.problems == [] and fake.requests == [{"hostname": "host.example.net", "myip": IP}]
    assert (result.outcome, result.kind) == (outcome, kind), result.message
    assert PASSWORD not in result.message
    if outcome == "toosoon":
        assert result.next_attempt is not None and result.next_attempt >= NOW + 600


def test_ten_minutes_between_updates(tmp_path: Path, httpserver: Any) -> None:
    cfg, fake, store = _setup(tmp_path, httpserver, "NOERROR")
    assert _run(cfg, store, IP, NOW).outcome == "good"
    early = _run(cfg, store, "11.0.0.3", NOW + 300)  # a new address, but easyDNS allows one update per 10 min
    assert early.action == "wait" and "10m" in early.message and len(fake.requests) == 1
    assert _run(cfg, store, "11.0.0.3", NOW + 601).outcome == "good" and len(fake.requests) == 2
    forced = _run(cfg, store, "11.0.0.4", NOW + 700, force=True)  # --force is the way around it
    assert forced.outcome == "good" and len(fake.requests) == 3
