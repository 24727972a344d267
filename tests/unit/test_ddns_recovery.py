"""A DDNS entry stopped by a fatal answer recovers after the fix it asks for: a new value in the same password
file (the path, all the config hash sees, is unchanged). The state holds a salted hash, never the value; the
same hint is given wherever the stop is shown."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from natlink.ddns.policy import EntryState, decide, secret_hash, stopped_hint
from natlink.ddns.updater import update_all
from natlink.publicip import PublicIpReport
from natlink.state import StateStore
from test_ddns_fakes import PASSWORD, Dyndns2Fake, dyndns2_toml, load, write_secret

NOW = 1_700_000_000.0
SALT = "00" * 16


def run(cfg: Any, store: StateStore, at: float, **kw: Any) -> Any:
    report = PublicIpReport(public_ipv4="11.0.0.2", public_ipv6=None, router_wan_ipv4="11.0.0.2", verdict="public",
                            problem=None)
    (result,) = update_all(cfg, store, report, now=at, rng=random.Random(1), **kw)
    return result


@pytest.fixture
def stopped(tmp_path: Path, httpserver: Any) -> tuple[Any, Dyndns2Fake, StateStore, Path]:
    fake = Dyndns2Fake(answer="good {ip}")

    def provider(request: Request) -> Response:  # a real dyndns2 server answers wrong credentials "badauth"
        if request.authorization and request.authorization.password != PASSWORD:
            fake.requests.append(dict(request.args))
            return Response("badauth")
        return fake.handler(request)

    httpserver.expect_request("/nic/update").respond_with_handler(provider)
    pw = write_secret(tmp_path, "pw", "an-old-password")
    cfg = load(tmp_path, dyndns2_toml("noip", httpserver.url_for("/"), pw))
    store = StateStore(cfg.service.state_dir)
    first = run(cfg, store, NOW)
    assert first.fatal and first.message.endswith(" — " + stopped_hint("d"))  # the same hint as when blocked
    return cfg, fake, store, pw


def test_same_secret_stays_stopped_with_the_one_hint(stopped: Any) -> None:
    cfg, fake, store, _ = stopped
    again = run(cfg, store, NOW + 300)
    assert again.action == "blocked" and again.message.endswith(stopped_hint("d"))
    assert len(fake.requests) == 1


def test_new_value_in_the_same_file_unblocks_on_the_next_round(stopped: Any) -> None:
    cfg, fake, store, pw = stopped
    pw.write_text(PASSWORD + "\n")
    result = run(cfg, store, NOW + 300)  # the same Config object: no reload needed
    assert (result.action, result.outcome, result.fatal) == ("update", "good", False)
    assert len(fake.requests) == 2
    assert run(cfg, store, NOW + 600).action == "skip"  # and then quiet again


def test_state_holds_a_salted_hash_never_the_value(stopped: Any) -> None:
    cfg, _, store, _ = stopped
    text = store.path("ddns-d").read_text()
    assert "an-old-password" not in text
    doc = json.loads(text)
    assert len(doc["secret_hash"]) == 32 and len(doc["secret_salt"]) == 32
    assert doc["secret_hash"] == secret_hash({"password": "an-old-password"}, doc["secret_salt"])


@pytest.mark.parametrize("state_hash, now_hash, action", [
    ("a", "a", "blocked"),  # same value
    ("a", "b", "update"),  # the fix
    (None, "b", "blocked"),  # stopped before hashes were kept: unknown, stay stopped
    ("a", None, "blocked"),  # the secret cannot be read now
])
def test_decide_table(state_hash: str | None, now_hash: str | None, action: str) -> None:
    state = EntryState(fatal=True, last_outcome="badauth", config_hash="c", secret_hash=state_hash)
    assert decide(state, {4: "11.0.0.2"}, "c", NOW, secrets_hash=now_hash).action == action


def test_hash_depends_on_value_and_salt() -> None:
    assert secret_hash({"password": "x"}, SALT) != secret_hash({"password": "y"}, SALT)
    assert secret_hash({"password": "x"}, SALT) != secret_hash({"password": "x"}, "11" * 16)
