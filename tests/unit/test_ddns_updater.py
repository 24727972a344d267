"""update_all end to end against a strict local dyndns2 server: zero requests while the address is stable,
fatal answers persisted (no retry until config change or --force), transient ones backed off, failed
detection touching nothing, and the state file holding the recap."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from natlink.ddns.updater import update_all
from natlink.errors import UsageError
from natlink.publicip import PublicIpReport
from natlink.state import StateStore
from test_ddns_fakes import PASSWORD, Dyndns2Fake, dyndns2_toml, load, write_secret

NOW = 1_700_000_000.0


def report(ip: str | None) -> PublicIpReport:
    return PublicIpReport(public_ipv4=ip, public_ipv6=None, router_wan_ipv4=ip,
                          verdict="public" if ip else "unknown", problem=None if ip else "no source answered")


@pytest.fixture
def setup(tmp_path: Path, httpserver: Any) -> tuple[Any, Dyndns2Fake, StateStore, Path]:
    fake = Dyndns2Fake(answer="good {ip}")
    httpserver.expect_request("/nic/update").respond_with_handler(fake.handler)
    pw = write_secret(tmp_path, "pw", PASSWORD)
    cfg = load(tmp_path, dyndns2_toml("noip", httpserver.url_for("/"), pw))
    return cfg, fake, StateStore(cfg.service.state_dir), pw


def run(cfg: Any, store: StateStore, ip: str | None, at: float, **kw: Any) -> Any:
    (result,) = update_all(cfg, store, report(ip), now=at, rng=random.Random(1), **kw)
    return result


def test_stable_address_costs_one_request_in_total(setup: Any) -> None:
    cfg, fake, store, _ = setup
    results = [run(cfg, store, "11.0.0.2", NOW + 300 * i) for i in range(20)]
    assert len(fake.requests) == 1
    assert results[0].action == "update" and results[0].outcome == "good"
    assert {r.action for r in results[1:]} == {"skip"}
    run(cfg, store, "11.0.0.3", NOW + 300 * 21)
    assert [r["myip"] for r in fake.requests] == ["11.0.0.2", "11.0.0.3"]


def test_state_file_is_the_recap(setup: Any) -> None:
    cfg, fake, store, _ = setup
    run(cfg, store, "11.0.0.2", NOW)
    state = json.loads(store.path("ddns-d").read_text())
    assert state["published"] == {"ipv4": "11.0.0.2"}
    assert (state["last_attempt"], state["last_success"], state["next_attempt"]) == (NOW, NOW, None)
    assert state["last_outcome"] == "good" and state["fatal"] is False and len(state["config_hash"]) == 16
    assert state["provider"] == "noip" and state["hostnames"] == ["host.example.net"]


def test_noip_keepalive_default(setup: Any) -> None:
    cfg, fake, store, _ = setup
    run(cfg, store, "11.0.0.2", NOW)
    assert run(cfg, store, "11.0.0.2", NOW + 24 * 86400).action == "skip"
    result = run(cfg, store, "11.0.0.2", NOW + 25 * 86400)
    assert (result.action, result.outcome) == ("update", "good")
    assert len(fake.requests) == 2


def test_fatal_is_persisted_until_config_changes_or_force(setup: Any, tmp_path: Path, httpserver: Any) -> None:
    cfg, fake, store, pw = setup
    fake.answer = "badauth"
    first = run(cfg, store, "11.0.0.2", NOW)
    assert (first.outcome, first.fatal) == ("badauth", True) and "password" in first.message
    for i in range(1, 10):  # later rounds, even with a new address, send nothing
        again = run(cfg, store, f"11.0.0.{2 + i}", NOW + 300 * i)
        assert again.action == "blocked" and again.fatal and "badauth" in again.message
    assert len(fake.requests) == 1
    # A fresh process reading the same state is still blocked.
    cfg_again = load(tmp_path, dyndns2_toml("noip", httpserver.url_for("/"), pw))
    assert run(cfg_again, store, "11.0.0.2", NOW + 4000).action == "blocked"
    # --force retries once.
    fake.answer = "good {ip}"
    forced = run(cfg_again, store, "11.0.0.2", NOW + 5000, force=True)
    assert forced.outcome == "good" and not forced.fatal
    assert len(fake.requests) == 2


def test_config_change_unblocks(setup: Any, tmp_path: Path, httpserver: Any) -> None:
    cfg, fake, store, pw = setup
    fake.answer = "nohost"
    assert run(cfg, store, "11.0.0.2", NOW).fatal
    fake.answer = "good {ip}"
    fixed = load(tmp_path, dyndns2_toml("noip", httpserver.url_for("/"), pw, hostnames=("right.example.net",)))
    result = run(fixed, store, "11.0.0.2", NOW + 60)
    assert result.outcome == "good" and fake.requests[-1]["hostname"] == "right.example.net"


def test_transient_backs_off(setup: Any) -> None:
    cfg, fake, store, _ = setup
    fake.answer = "911"
    first = run(cfg, store, "11.0.0.2", NOW)
    assert first.kind == "transient" and not first.fatal and first.next_attempt is not None
    delay = first.next_attempt - NOW
    assert 30 <= delay <= 60
    assert run(cfg, store, "11.0.0.2", NOW + delay - 1).action == "wait"
    assert len(fake.requests) == 1
    second = run(cfg, store, "11.0.0.2", NOW + delay + 1)
    assert second.action == "update" and len(fake.requests) == 2
    assert 60 <= second.next_attempt - (NOW + delay + 1) <= 120  # doubled
    fake.answer = "good {ip}"
    third = run(cfg, store, "11.0.0.2", second.next_attempt + 1)
    assert third.outcome == "good" and third.next_attempt is None


def test_failed_detection_touches_nothing(setup: Any) -> None:
    cfg, fake, store, _ = setup
    run(cfg, store, "11.0.0.2", NOW)
    before = store.path("ddns-d").read_text()
    result = run(cfg, store, None, NOW + 300, force=True)
    assert result.action == "no-ip" and "no source answered" in result.message
    assert len(fake.requests) == 1 and store.path("ddns-d").read_text() == before


def test_names_filter_and_unknown_name(setup: Any) -> None:
    cfg, fake, store, _ = setup
    assert update_all(cfg, store, report("11.0.0.2"), names=["d"], now=NOW)[0].name == "d"
    with pytest.raises(UsageError, match="no \\[\\[ddns\\]\\] entry named nope"):
        update_all(cfg, store, report("11.0.0.2"), names=["nope"], now=NOW)


def test_missing_secret_sends_nothing_and_is_not_persisted(tmp_path: Path, httpserver: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Dyndns2Fake()
    httpserver.expect_request("/nic/update").respond_with_handler(fake.handler)
    monkeypatch.delenv("NL_TEST_PW", raising=False)
    toml = dyndns2_toml("noip", httpserver.url_for("/"), tmp_path / "x").replace(
        f'password_file = "{tmp_path / "x"}"', 'password_env = "NL_TEST_PW"')
    cfg = load(tmp_path, toml)
    store = StateStore(cfg.service.state_dir)
    result = run(cfg, store, "11.0.0.2", NOW)
    assert (result.action, result.outcome, result.fatal) == ("error", "secret", True)
    assert "NL_TEST_PW" in result.message and fake.requests == []
    assert store.load("ddns-d") is None
    monkeypatch.setenv("NL_TEST_PW", PASSWORD)
    assert run(cfg, store, "11.0.0.2", NOW + 300).outcome == "good"


def test_world_readable_secret_is_warned_when_the_config_is_loaded(tmp_path: Path, httpserver: Any,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    pw = write_secret(tmp_path, "pw", PASSWORD)
    pw.chmod(0o644)
    with caplog.at_level("WARNING", logger="natlink"):
        load(tmp_path, dyndns2_toml("noip", httpserver.url_for("/"), pw))
    assert [r.getMessage() for r in caplog.records if "readable by every user" in r.getMessage()] == [
        f"ddns[0].password_file: secret file {pw} is readable by every user (mode 0644); chmod 600 {pw} "
        "(or use a systemd credential)"]
