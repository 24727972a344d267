"""UDP pieces of the probe on loopback: natlink's nonce listener and the reflector's UDP dial."""

from __future__ import annotations

import socket

from natlink.probe.dial import dial_udp
from natlink.probe.nonce_listener import PREFIX, try_listen


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_udp_listener_answers_a_datagram_with_the_nonce():
    port = _free_udp_port()
    listener, status = try_listen("127.0.0.1", port, "udp")
    assert status == "listening" and listener is not None
    try:
        out = dial_udp("127.0.0.1", port, 2.0, read=len(listener.line))
        assert out.outcome == "open" and out.data == listener.line and out.data.startswith(PREFIX)
        assert listener.hits == 1
    finally:
        listener.stop()


def test_udp_listener_never_binds_beside_a_service_that_set_reuseaddr():
    """A UDP service with SO_REUSEADDR on the port: natlink must see it in use, not share the port and answer
    (or swallow) the service's datagrams."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as service:
        service.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        service.bind(("0.0.0.0", 0))
        port = service.getsockname()[1]
        listener, status = try_listen("127.0.0.1", port, "udp")
        if listener is not None:
            listener.stop()
        assert (listener, status) == (None, "in-use")


def test_udp_dial_to_a_closed_port_is_refused_by_icmp():
    out = dial_udp("127.0.0.1", _free_udp_port(), 2.0)
    assert out.outcome == "refused"


def test_many_listeners_share_one_hub_thread():
    import threading

    from natlink.probe.dial import dial_tcp
    from natlink.probe.nonce_listener import NonceHub

    before = {t.name for t in threading.enumerate()}
    hub = NonceHub()
    listeners = [try_listen("127.0.0.1", 0, proto, hub)[0] for proto in ("tcp", "udp") * 10]
    assert all(listeners)
    try:
        names = [t.name for t in threading.enumerate() if t.name not in before]
        assert names == ["nonce-hub"]  # 20 listeners, one thread
        for listener in listeners:
            port = listener._sock.getsockname()[1]
            if listener.protocol == "tcp":
                out = dial_tcp("127.0.0.1", port, 2.0, read=len(listener.line), read_timeout=2.0)
            else:
                out = dial_udp("127.0.0.1", port, 2.0, read=len(listener.line))
            assert out.outcome == "open" and out.data == listener.line
        assert [listener.hits for listener in listeners] == [1] * 20
    finally:
        for listener in listeners:
            listener.request_stop()
        for listener in listeners:
            listener.stop()
        hub.close()
    assert "nonce-hub" not in {t.name for t in threading.enumerate()}

