"""A Secret cannot be opened by a generic serialiser (asdict, repr, json, pickle, vars, format); state writes
refuse what JSON cannot hold instead of stringifying it; every secret file readable beyond its owner is warned
about by one helper — DDNS *_file keys, TSIG key files, the probe token and `natlink reflector --token-file`."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import pickle
from pathlib import Path

import pytest

from natlink.commands import reflector as reflector_cmd
from natlink.config import parse_config
from natlink.secrets import Secret, SecretRef, exposed_mode, read_secret, warn_if_exposed
from natlink.service import jobs
from natlink.state import StateStore

VALUE = "s3cr3t-v4lue-0123"


@dataclasses.dataclass(frozen=True)
class Holder:
    name: str
    token: Secret


def test_secret_is_not_a_dataclass_and_generic_serialisers_cannot_open_it() -> None:
    secret = Secret(VALUE, "file /etc/natlink/token")
    assert not dataclasses.is_dataclass(secret)
    with pytest.raises(TypeError):
        dataclasses.asdict(secret)  # type: ignore[call-overload]
    for shown in (str(secret), repr(secret), f"{secret}", f"{secret!r}", f"{secret:>40}", "%s %r" % (secret, secret)):
        assert VALUE not in shown
    assert repr(secret) == "Secret(<file /etc/natlink/token>)" and str(secret) == "***"
    with pytest.raises(TypeError):
        json.dumps(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        vars(secret)
    with pytest.raises(AttributeError):
        secret.value = "other"  # type: ignore[misc]
    assert secret.value == VALUE  # only asked for by name


def test_asdict_of_a_dataclass_holding_a_secret_does_not_reveal_it() -> None:
    holder = Holder("probe", Secret(VALUE, "env TOKEN"))
    doc = dataclasses.asdict(holder)
    assert doc["token"] is holder.token  # the same opaque object, never its value
    assert VALUE not in repr(doc) and VALUE not in str(dataclasses.astuple(holder))
    assert VALUE not in repr(holder)
    with pytest.raises(TypeError):
        json.dumps(doc)
    assert copy.deepcopy(holder).token is holder.token


def test_secrets_compare_by_value_and_source() -> None:
    assert Secret(VALUE, "a") == Secret(VALUE, "a") and hash(Secret(VALUE, "a")) == hash(Secret(VALUE, "a"))
    assert Secret(VALUE, "a") != Secret(VALUE + "x", "a") and Secret(VALUE, "a") != Secret(VALUE, "b")


def test_state_write_refuses_unknown_types_and_leaves_no_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.save("ok", {"a": [1, 2.5, "x", None, True], "b": {"c": (1, 2)}})
    assert store.load("ok") == {"a": [1, 2.5, "x", None, True], "b": {"c": [1, 2]}}
    for bad in ({"token": Secret(VALUE)}, {"path": Path("/x")}, {"set": {1, 2}}, Holder("x", Secret(VALUE))):
        with pytest.raises(TypeError):
            store.save("bad", bad)
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["ok.json"]  # no half or temp file


def test_jobs_to_json_uses_only_a_types_own_to_json() -> None:
    class Report:
        def to_json(self) -> dict[str, str]:
            return {"address": "11.0.0.2"}

    assert jobs.to_json(Report()) == {"address": "11.0.0.2"}
    with pytest.raises(TypeError, match="Holder has no to_json"):
        jobs.to_json(Holder("x", Secret(VALUE)))


@pytest.mark.parametrize("mode, warned, who", [
    (0o600, False, ""), (0o400, False, ""), (0o700, False, ""),
    (0o640, True, "its group"), (0o604, True, "every user"), (0o644, True, "every user"),
])
def test_warn_if_exposed(tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int, warned: bool, who: str) -> None:
    path = tmp_path / "secret"
    path.write_text(VALUE)
    path.chmod(mode)
    with caplog.at_level("WARNING", logger="natlink"):
        assert warn_if_exposed(path, "thing") is warned
    assert (exposed_mode(path) == mode) is warned
    if warned:
        assert [r.getMessage() for r in caplog.records] == [
            f"thing: secret file {path} is readable by {who} (mode {mode:04o}); chmod 600 {path} "
            "(or use a systemd credential)"]
    else:
        assert caplog.records == []


def test_missing_file_is_not_warned_about(tmp_path: Path) -> None:
    assert exposed_mode(tmp_path / "nope") is None


def _exposed(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o640)
    return path


def test_config_warns_for_tsig_key_and_probe_token_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = _exposed(tmp_path, "tsig.key", 'key "k" { algorithm hmac-sha256; secret "c2VjcmV0c2VjcmV0"; };\n')
    token = _exposed(tmp_path, "reflector.token", VALUE + "\n")
    text = (f'[[ddns]]\nname = "z"\nprovider = "rfc2136"\nhostnames = ["a.example.net"]\nserver = "ns1.example.net"\n'
            f'tsig_key_file = "{key}"\n\n[[mapping]]\nname = "rdp"\nexternal_port = 3390\n\n'
            f'[[probe]]\nmapping = "rdp"\nreflector = "https://r.example.net:8765"\ntoken_file = "{token}"\n')
    with caplog.at_level("WARNING", logger="natlink"):
        parse_config(text, tmp_path / "c.toml")
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in messages] == ["ddns[0].tsig_key_file", "probe[0].token_file"]
    assert all("readable by its group (mode 0640)" in m and VALUE not in m for m in messages)


def test_reflector_token_file_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token = _exposed(tmp_path, "token", VALUE + "\n")
    parser = argparse.ArgumentParser()
    reflector_cmd.add_arguments(parser)
    with caplog.at_level("WARNING", logger="natlink"):
        settings = reflector_cmd.settings_from(parser.parse_args(["--listen", "127.0.0.1:0", "--token-file", str(token),
                                                                   "--insecure-http"]))
    assert settings.token == read_secret(SecretRef("file", str(token)))
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["reflector --token-file"]


@pytest.mark.parametrize("listen, tls, warned", [
    ("0.0.0.0:0", False, True), ("[::]:0", False, True), ("127.0.0.1:0", False, False), ("0.0.0.0:0", True, False),
])
def test_reflector_warns_when_its_token_would_cross_the_network_in_clear(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, listen: str, tls: bool, warned: bool) -> None:
    token = tmp_path / "token"
    token.write_text(VALUE + "\n")
    token.chmod(0o600)
    parser = argparse.ArgumentParser()
    reflector_cmd.add_arguments(parser)
    argv = ["--listen", listen, "--token-file", str(token)] + (["--tls-cert", str(tmp_path / "c.pem")] if tls else ["--insecure-http"])
    with caplog.at_level("WARNING", logger="natlink"):
        reflector_cmd.settings_from(parser.parse_args(argv))
    assert [r.getMessage() for r in caplog.records] == ([
        "reflector: --token-file without --tls-cert: clients send the token in clear text over http://; serve HTTPS "
        "with --tls-cert/--tls-key"] if warned else [])
