"""Service-side fixes found under a real systemd: the metrics server binds without a reverse DNS lookup of its
address (HTTPServer's default getfqdn stalls for seconds on a host whose resolver cannot answer for it), on IPv4
and IPv6; the hung-job limit behind the watchdog is a config key."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from natlink.config import load_config
from natlink.errors import NatlinkError
from natlink.service.metrics import MetricsServer


def test_bind_never_asks_getfqdn(monkeypatch):
    def no_lookup(*_args):
        raise AssertionError("reverse DNS lookup at bind")

    monkeypatch.setattr(socket, "getfqdn", no_lookup)
    server = MetricsServer("127.0.0.1:0", lambda: "natlink_up 1\n").start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as answer:
            assert answer.read() == b"natlink_up 1\n"
    finally:
        server.stop()


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this Python")
def test_ipv6_listen_address():
    try:
        server = MetricsServer("[::1]:0", lambda: "x 1\n").start()
    except Exception as exc:  # a host without ::1 (IPv6 disabled)
        pytest.skip(f"no ::1 here: {exc}")
    try:
        with urllib.request.urlopen(f"http://[::1]:{server.port}/", timeout=5) as answer:
            assert answer.read() == b"x 1\n"
    finally:
        server.stop()


def test_hung_job_limit_from_config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[service]\nstate_dir = "s"\nhung_job = "90s"\n')
    assert load_config(str(path)).service.hung_job == 90
    path.write_text('[service]\nstate_dir = "s"\n')
    assert load_config(str(path)).service.hung_job == 300
    path.write_text('[service]\nstate_dir = "s"\nhung_job = 0\n')
    with pytest.raises(NatlinkError) as err:
        load_config(str(path))
    assert "hung_job" in str(err.value) and "at least 1s" in str(err.value)
