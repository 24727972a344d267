"""Grep test: no configured secret value appears in any output, log record (even at -v) or state file, across
successes and every failure path of every provider (DuckDNS even carries its token in the URL)."""

from __future__ import annotations

import base64
import logging
import re
import socket
import traceback
from pathlib import Path
from typing import Any

import pytest

from natlink.cli import main
from test_ddns_fakes import CF_TOKEN, PASSWORD, TOKEN, USER, CloudflareFake, DuckFake, Dyndns2Fake, write_secret

TSIG = base64.b64encode(b"tsig-secret-bytes-for-the-grep-test!").decode()
SECRETS = [PASSWORD, TOKEN, CF_TOKEN, TSIG]


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        self.texts.append(text)


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def config(tmp_path: Path, httpserver: Any) -> Path:
    good = Dyndns2Fake(path="/good/nic/update", answer="good {ip}")
    bad = Dyndns2Fake(path="/bad/nic/update", answer="badauth", status=401)
    duck = DuckFake(token="the-account-token-is-different")  # so ours gets KO
    cf = CloudflareFake(token="another-token")  # so ours is refused
    httpserver.expect_request("/good/nic/update").respond_with_handler(good.handler)
    httpserver.expect_request("/bad/nic/update").respond_with_handler(bad.handler)
    httpserver.expect_request("/update").respond_with_handler(duck.handler)
    httpserver.expect_request(re.compile("/client/v4/.*")).respond_with_handler(cf.handler)
    httpserver.expect_request("/ip").respond_with_data("11.0.0.2\n", content_type="text/plain")
    pw = write_secret(tmp_path, "pw", PASSWORD)
    tok = write_secret(tmp_path, "duck", TOKEN)
    cft = write_secret(tmp_path, "cf", CF_TOKEN)
    key = write_secret(tmp_path, "tsig.key", f'key "k" {{ algorithm hmac-sha256; secret "{TSIG}"; }};')
    key.chmod(0o644)  # also exercises the "readable by others" warning path
    base = httpserver.url_for("/").rstrip("/")
    path = tmp_path / "natlink.toml"
    path.write_text(f"""
[public_ip]
sources = ["{base}/ip"]
[[ddns]]
name = "good"
verify = false  # example.* names have no zone to read back
provider = "dyndns2"
hostnames = ["a.example.net"]
server = "{base}/good/nic/update"
username = "{USER}"
password_file = "{pw}"
[[ddns]]
name = "bad"
verify = false  # example.* names have no zone to read back
provider = "noip"
hostnames = ["b.example.net"]
server = "{base}/bad/nic/update"
username = "{USER}"
password_file = "{pw}"
[[ddns]]
name = "duck"
verify = false  # example.* names have no zone to read back
provider = "duckdns"
hostnames = ["myhome"]
server = "{base}"
token_file = "{tok}"
[[ddns]]
name = "cf"
verify = false  # example.* names have no zone to read back
provider = "cloudflare"
hostnames = ["home.example.com"]
server = "{base}/client/v4"
api_token_file = "{cft}"
[[ddns]]
name = "dns"
provider = "rfc2136"
hostnames = ["rdp.home.example"]
server = "127.0.0.1"
port = {_closed_udp_port()}
zone = "home.example"
tsig_key_file = "{key}"
[service]
state_dir = "{tmp_path / 'state'}"
""")
    return path


def test_no_secret_anywhere(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    from natlink.ddns import updater
    monkeypatch.setattr(updater, "PROVIDER_TIMEOUT", 1.0)  # the rfc2136 entry's server never answers
    # The fake providers run in this process; their access log is the provider's side (it shows the DuckDNS
    # URL with its token, as DuckDNS's own logs would), not natlink output.
    monkeypatch.setattr(logging.getLogger("werkzeug"), "disabled", True)
    collector = Collect()
    logger = logging.getLogger("natlink")
    logger.addHandler(collector)
    try:
        codes = [main(["-c", str(config), "-v", *argv]) for argv in
                 (["check-config"], ["--json", "check-config"], ["ip"], ["--json", "ip"], ["ddns"],
                  ["--json", "ddns"], ["ddns", "--force"], ["--json", "ddns", "--force", "cf", "duck"])]
    finally:
        logger.removeHandler(collector)
    captured = capsys.readouterr()
    state_files = sorted((tmp_path / "state").glob("*.json"))
    # The runs really went through the failure paths we want to grep.
    assert codes[4:] == [1, 1, 1, 1]
    assert {p.stem for p in state_files} >= {"ddns-good", "ddns-bad", "ddns-duck", "ddns-cf", "ddns-dns"}
    everything = captured.out + captured.err + "\n".join(collector.texts)
    assert "badauth" in everything and "KO" in everything and "Cloudflare refused" in everything
    assert "readable by every user" in everything
    for path in state_files:
        everything += path.read_text()
    for secret in SECRETS:
        assert secret not in everything
        assert base64.b64encode(f"{USER}:{secret}".encode()).decode() not in everything
