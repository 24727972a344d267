"""ADDR:PORT in text: the strict form (config targets, listen addresses), a server with an optional port, joining."""

from __future__ import annotations

import pytest

from natlink.hostport import join, parse_server, parse_target


@pytest.mark.parametrize("text, strict, listen", [
    ("127.0.0.1:9877", ("127.0.0.1", 9877), ("127.0.0.1", 9877)),
    ("[::1]:443", ("::1", 443), ("::1", 443)),
    ("example.net:80", ("example.net", 80), ("example.net", 80)),
    ("127.0.0.1:0", None, ("127.0.0.1", 0)),  # port 0 only where the kernel picks one
    ("[::1]:0", None, ("::1", 0)),
    ("127.0.0.1:65536", None, None),
    ("127.0.0.1", None, None),
    ("::1:80", None, None),  # a bare IPv6 address needs brackets
    ("host name:80", None, None),
    ("", None, None),
])
def test_parse_target(text, strict, listen):
    assert parse_target(text) == strict
    assert parse_target(text, any_port=True) == listen


@pytest.mark.parametrize("text, expected", [
    ("11.0.0.1", ("11.0.0.1", 53)), ("11.0.0.1:5353", ("11.0.0.1", 5353)),
    ("[2001:db8::1]:54", ("2001:db8::1", 54)), ("2001:db8::1", ("2001:db8::1", 53)),
    ("[2001:db8::1]", ("2001:db8::1", 53)), ("ns1.example.net", ("ns1.example.net", 53)),
])
def test_parse_server(text, expected):
    assert parse_server(text, 53) == expected


def test_join_brackets_ipv6_only():
    assert (join("127.0.0.1", 80), join("::1", 80), join("example.net", 443)) == ("127.0.0.1:80", "[::1]:80",
                                                                                 "example.net:443")
