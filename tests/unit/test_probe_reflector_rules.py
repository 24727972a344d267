"""Pure parts of the reflector: request validation and the per-client rate limit."""

from __future__ import annotations

import base64
import json

import pytest

from natlink.probe.reflector import PortSpec, RateLimiter, ReflectorSettings, RequestError, client_address, parse_probe_request

S = ReflectorSettings(max_ports=4, max_timeout=5.0, max_read=100)


@pytest.mark.parametrize("body,specs,timeout", [
    ({"ports": [3390]}, [PortSpec(3390)], 3.0),
    ({"ports": [1, 65535], "timeout": 1}, [PortSpec(1), PortSpec(65535)], 1.0),
    ({"ports": [{"port": 53, "protocol": "udp", "read": 10}]}, [PortSpec(53, "udp", 10)], 3.0),
    ({"ports": [{"port": 80, "read": 5000}], "timeout": 60}, [PortSpec(80, "tcp", 100)], 5.0),  # both capped
    ({"ports": [{"port": 53, "protocol": "udp", "send": base64.b64encode(b"hi").decode()}]},
     [PortSpec(53, "udp", 0, b"hi")], 3.0),
])
def test_valid_requests(body, specs, timeout):
    assert parse_probe_request(json.dumps(body).encode(), S) == (specs, timeout)


@pytest.mark.parametrize("raw,words", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[3390]", "JSON object"),
    (b'{"ports": []}', "non-empty list"),
    (b'{"ports": [0]}', "out of range"),
    (b'{"ports": [65536]}', "out of range"),
    (b'{"ports": [-1]}', "out of range"),
    (b'{"ports": ["80"]}', "out of range"),
    (b'{"ports": [true]}', "out of range"),
    (b'{"ports": [1,2,3,4,5]}', "5 ports in one request; this reflector allows 4"),
    (b'{"ports": [80], "host": "192.0.2.7"}', "only dials back the address the request comes from"),
    (b'{"ports": [{"port": 80, "address": "192.0.2.7"}]}', "cannot name a host"),
    (b'{"ports": [80], "extra": 1}', "unknown key 'extra'"),
    (b'{"ports": [{"port": 80, "protocol": "sctp"}]}', "not tcp or udp"),
    (b'{"ports": [80], "timeout": 0}', "greater than 0"),
    (b'{"ports": [{"port": 80, "read": -1}]}', "byte count"),
    (b'{"ports": [{"port": 80, "send": "aGk="}]}', "only for udp"),
])
def test_bad_requests(raw, words):
    with pytest.raises(RequestError) as info:
        parse_probe_request(raw, S)
    assert info.value.status == 400
    assert words in info.value.message


def test_rate_limit_burst_then_refill():
    rl = RateLimiter(per_minute=3)
    assert [rl.allow("a", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = rl.allow("a", now=100.0)
    assert 19.0 < wait <= 20.0  # one token per 20 s
    assert rl.allow("b", now=100.0) == 0.0  # other clients are independent
    assert rl.allow("a", now=121.0) == 0.0


def test_rate_limit_memory_is_bounded():
    rl = RateLimiter(per_minute=60, max_clients=10)
    for i in range(100):
        rl.allow(f"10.0.0.{i}", now=float(i))
    assert len(rl._buckets) <= 10


def test_rate_limit_off():
    rl = RateLimiter(per_minute=0)
    assert all(rl.allow("a", now=1.0) == 0.0 for _ in range(1000))


@pytest.mark.parametrize("raw,want", [("::ffff:11.0.0.2", "11.0.0.2"), ("11.0.0.2", "11.0.0.2"),
                                      ("2001:db8::1", "2001:db8::1")])
def test_client_address(raw, want):
    assert client_address(raw) == want
