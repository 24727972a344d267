"""No secret in clear: credentials (DDNS) and the reflector token over http:// to anything but loopback are
refused when the config is loaded, with one line naming both fixes; `allow_insecure_http = true` in the entry
lets it through and warns every time the config is loaded (every run, every reload)."""

from __future__ import annotations

from pathlib import Path

import pytest

from natlink.cleartext import cleartext_host, is_loopback
from natlink.config import parse_config
from natlink.errors import ConfigError


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("[::1]", True), ("::ffff:127.0.0.1", True),
    ("localhost", True), ("LOCALHOST.", True), ("dyn.localhost", True),
    ("10.0.0.1", False), ("192.168.1.1", False), ("11.0.0.1", False), ("::", False), ("0.0.0.0", False),
    ("example.net", False), ("localhost.example.net", False), ("127.0.0.1.nip.io", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("url, host", [
    ("http://members.dyndns.org", "members.dyndns.org"),
    ("HTTP://members.dyndns.org/nic/update", "members.dyndns.org"),
    ("http://11.0.0.1:8765", "11.0.0.1"),
    ("http://[2001:db8::1]:80/", "2001:db8::1"),
    ("http://127.0.0.1:8080", None), ("http://[::1]:9", None), ("http://localhost:8765", None),
    ("https://members.dyndns.org", None),
    ("members.dyndns.org", None),  # no scheme: the providers use https://
    ("ns1.example.net", None), (None, None), ("", None),
])
def test_cleartext_host(url: str | None, host: str | None) -> None:
    assert cleartext_host(url) == host


def _secret(tmp_path: Path, name: str = "pw") -> Path:
    path = tmp_path / name
    path.write_text("hunter2-value\n")
    path.chmod(0o600)
    return path


def _dyndns2(tmp_path: Path, server: str, extra: str = "") -> str:
    return (f'[[ddns]]\nname = "dyn"\nprovider = "dyndns2"\nhostnames = ["h.example.net"]\nserver = "{server}"\n'
            f'username = "me"\npassword_file = "{_secret(tmp_path)}"\n{extra}')


PROVIDER_ENTRIES = {
    "dyndns2": 'provider = "dyndns2"\nusername = "me"\npassword_file = "{pw}"\n',
    "noip": 'provider = "noip"\nusername = "me"\npassword_file = "{pw}"\n',
    "dynu": 'provider = "dynu"\nusername = "me"\npassword_file = "{pw}"\n',
    "oray": 'provider = "oray"\nusername = "me"\npassword_file = "{pw}"\n',
    "cloudflare": 'provider = "cloudflare"\napi_token_file = "{pw}"\n',
    "duckdns": 'provider = "duckdns"\ntoken_file = "{pw}"\n',
}


@pytest.mark.parametrize("provider", sorted(PROVIDER_ENTRIES))
def test_every_http_provider_refuses_a_cleartext_server(tmp_path: Path, provider: str) -> None:
    body = PROVIDER_ENTRIES[provider].format(pw=_secret(tmp_path))
    text = f'[[ddns]]\nname = "d"\nhostnames = ["h.example.net"]\nserver = "http://api.example.net"\n{body}'
    with pytest.raises(ConfigError) as err:
        parse_config(text, tmp_path / "c.toml")
    assert str(err.value) == (
        f"c.toml:4: ddns[0].server: 'http://api.example.net' would send the {provider} credentials in clear text "
        "(http://) to api.example.net; use 'https://api.example.net', or set allow_insecure_http = true in this "
        "entry if the network path is trusted")


def test_https_bare_hosts_and_loopback_are_accepted_without_a_word(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        for server in ("https://members.example.net", "members.example.net", "http://127.0.0.1:8080"):
            assert parse_config(_dyndns2(tmp_path, server), tmp_path / "c.toml").ddns[0].options["server"] == server
    assert caplog.records == []


def test_allow_insecure_http_lets_it_through_and_warns_on_every_load(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    text = _dyndns2(tmp_path, "http://10.9.8.7/nic/update", "allow_insecure_http = true\n")
    with caplog.at_level("WARNING", logger="natlink"):
        for _ in range(2):
            cfg = parse_config(text, tmp_path / "c.toml")
    assert cfg.ddns[0].allow_insecure_http is True
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["ddns[0]: allow_insecure_http = true: the dyndns2 credentials go to 10.9.8.7 over plain "
                        "http://, readable by anyone on the path; use https:// when you can"] * 2
    assert "hunter2" not in " ".join(warnings)


def test_allow_insecure_http_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ddns\[0\]\.allow_insecure_http: expected true or false"):
        parse_config(_dyndns2(tmp_path, "http://10.9.8.7", 'allow_insecure_http = "yes"\n'))


PROBE = '[[mapping]]\nname = "rdp"\nexternal_port = 3390\n\n[[probe]]\nmapping = "rdp"\nreflector = "{url}"\n'


def test_reflector_token_over_cleartext_is_refused(tmp_path: Path) -> None:
    token = _secret(tmp_path, "reflector.token")
    text = PROBE.format(url="http://reflector.example.net:8765") + f'token_file = "{token}"\n'
    with pytest.raises(ConfigError) as err:
        parse_config(text, tmp_path / "c.toml")
    assert str(err.value) == (
        "c.toml:7: probe[0].reflector: 'http://reflector.example.net:8765' would send the reflector token in clear "
        "text (http://) to reflector.example.net; use 'https://reflector.example.net:8765', or set "
        "allow_insecure_http = true in this entry if the network path is trusted")
    cfg = parse_config(text + "allow_insecure_http = true\n")
    assert cfg.probes[0].allow_insecure_http and cfg.probes[0].token is not None


def test_reflector_without_token_or_on_loopback_may_use_http(tmp_path: Path) -> None:
    assert parse_config(PROBE.format(url="http://reflector.example.net:8765")).probes[0].token is None
    token = _secret(tmp_path, "reflector.token")
    cfg = parse_config(PROBE.format(url="http://127.0.0.1:8765") + f'token_file = "{token}"\n')
    assert cfg.probes[0].token is not None and not cfg.probes[0].allow_insecure_http


def test_the_command_line_says_it_in_one_line_and_warns_when_allowed(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "c.toml"
    config.write_text(_dyndns2(tmp_path, "http://203.0.113.9"))
    proc = subprocess.run([sys.executable, "-m", "natlink", "-c", str(config), "check-config"], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "natlink: c.toml:5: ddns[0].server: 'http://203.0.113.9' would send the dyndns2 credentials in clear text "
        "(http://) to 203.0.113.9; use 'https://203.0.113.9', or set allow_insecure_http = true in this entry if "
        "the network path is trusted"]
    config.write_text(_dyndns2(tmp_path, "http://203.0.113.9", "allow_insecure_http = true\n"))
    proc = subprocess.run([sys.executable, "-m", "natlink", "-c", str(config), "check-config"], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "allow_insecure_http = true: the dyndns2 credentials go to 203.0.113.9 over plain http://" in proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr
