"""rfc2136 pieces that need no server: key file formats and the answer-code table.
(The protocol itself is tested against the lab's real knot in tests/lab/test_ddns_rfc2136.py.)"""

from __future__ import annotations

import errno
import socket
import threading
from pathlib import Path

import dns.rcode
import pytest

from natlink.config import parse_config
from natlink.ddns.rfc2136 import KeyFileError, Rfc2136Provider, classify_rcode, parse_tsig_key

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlYw=="

FORMATS = [
    ("bind", f'key "natlink-lab" {{\n\talgorithm hmac-sha256;\n\tsecret "{SECRET}";\n}};\n',
     "natlink-lab", "hmac-sha256"),
    ("bind one line, unquoted name", f'key ddns.key. {{ algorithm hmac-sha512; secret "{SECRET}"; }};',
     "ddns.key", "hmac-sha512"),
    ("knot yaml", f"key:\n  - id: natlink-lab\n    algorithm: hmac-sha256\n    secret: {SECRET}\n",
     "natlink-lab", "hmac-sha256"),
    ("keymgr comment line", f"# hmac-sha384:k1:{SECRET}\n", "k1", "hmac-sha384"),
    ("knsupdate -y form", f"hmac-sha256:k2:{SECRET}", "k2", "hmac-sha256"),
]


@pytest.mark.parametrize("label, text, name, algorithm", FORMATS, ids=[f[0] for f in FORMATS])
def test_key_formats(label: str, text: str, name: str, algorithm: str) -> None:
    key = parse_tsig_key(text)
    assert (key.name, key.algorithm, key.secret.value) == (name, algorithm, SECRET)
    assert SECRET not in repr(key) and SECRET not in str(key.secret)


def test_algorithm_override() -> None:
    assert parse_tsig_key(f"key k {{ secret \"{SECRET}\"; }};", algorithm_override="hmac-sha512").algorithm == \
        "hmac-sha512"


@pytest.mark.parametrize("text, words", [
    ("nonsense", "not a TSIG key"),
    (f'key "k" {{ algorithm hmac-foo; secret "{SECRET}"; }};', "unknown TSIG algorithm"),
    ('key "k" { algorithm hmac-sha256; secret "not*base64!"; };', "not valid base64"),
])
def test_bad_key_files_never_echo_the_content(text: str, words: str) -> None:
    with pytest.raises(KeyFileError) as err:
        parse_tsig_key(text, "tsig_key file /etc/k")
    assert words in str(err.value) and "not*base64!" not in str(err.value)


@pytest.mark.parametrize("rcode, outcome, kind", [
    (dns.rcode.NOERROR, "good", "success"),
    (dns.rcode.NOTAUTH, "notauth", "fatal"),
    (dns.rcode.REFUSED, "refused", "fatal"),
    (dns.rcode.NOTZONE, "notzone", "fatal"),
    (dns.rcode.SERVFAIL, "servfail", "transient"),
    (dns.rcode.YXRRSET, "yxrrset", "fatal"),
])
def test_rcodes(rcode: int, outcome: str, kind: str) -> None:
    result = classify_rcode(rcode, "home.example")
    assert (result.outcome, result.kind) == (outcome, kind)


def udp_and_tcp_on_one_port() -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to the same loopback port. The kernel picks a free UDP port, but that number
    can still be taken for TCP: earlier tests' loopback connections leave their ephemeral ports in TIME_WAIT
    (EADDRINUSE, seen once in a full unit run). So take another UDP port until the TCP bind succeeds too."""
    for _ in range(100):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
        except OSError as exc:
            udp.close()
            tcp.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        return udp, tcp
    raise AssertionError("no loopback port free for both UDP and TCP")


def test_truncated_udp_answer_is_repeated_over_tcp(tmp_path: Path) -> None:
    """knot never truncates an UPDATE answer, so a loopback server does: UDP answers TC=1, TCP answers NOERROR."""
    import dns.flags
    import dns.message
    import dns.update

    udp, tcp = udp_and_tcp_on_one_port()
    port = udp.getsockname()[1]
    tcp.listen(1)
    seen: list[str] = []

    def serve_udp() -> None:
        wire, peer = udp.recvfrom(4096)
        query = dns.message.from_wire(wire)
        seen.append("udp")
        response = dns.message.make_response(query)
        response.flags |= dns.flags.TC
        udp.sendto(response.to_wire(), peer)

    def serve_tcp() -> None:
        conn, _ = tcp.accept()
        with conn:
            length = int.from_bytes(conn.recv(2), "big")
            wire = b""
            while len(wire) < length:
                wire += conn.recv(length - len(wire))
            query = dns.message.from_wire(wire)
            assert isinstance(query, dns.update.UpdateMessage)
            seen.append("tcp")
            out = dns.message.make_response(query).to_wire()
            conn.sendall(len(out).to_bytes(2, "big") + out)

    threads = [threading.Thread(target=serve_udp, daemon=True), threading.Thread(target=serve_tcp, daemon=True)]
    for t in threads:
        t.start()
    try:
        cfg = parse_config(f'[[ddns]]\nname = "x"\nprovider = "rfc2136"\nhostnames = ["a.home.example"]\n'
                           f'server = "127.0.0.1"\nport = {port}\nzone = "home.example"\nverify = false\n'
                           f'[service]\nstate_dir = "{tmp_path}"\n', tmp_path / "c.toml")
        result = Rfc2136Provider(cfg.ddns[0], {}, timeout=2).update({4: "11.0.0.2"})
    finally:
        for t in threads:
            t.join(3)
        udp.close()
        tcp.close()
    assert result.outcome == "good"
    assert seen == ["udp", "tcp"]
