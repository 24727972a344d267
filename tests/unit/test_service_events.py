"""Parsing router announcements and netlink address messages; the listeners on real sockets (loopback)."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from natlink.service.events import (
    RTM_DELADDR, RTM_NEWADDR, AddressListener, AnnouncementListener, Event, parse_announcement,
    parse_netlink_addr,
)
from natlink.service.policy import ANNOUNCE, HOST_ADDRESS


def natpmp(epoch: int, ip: str, result: int = 0, op: int = 128) -> bytes:
    return bytes([0, op]) + struct.pack("!HI", result, epoch) + socket.inet_aton(ip)


def pcp_announce(epoch: int, result: int = 0) -> bytes:
    return bytes([2, 0x80, 0, result]) + struct.pack("!II", 0, epoch) + bytes(12)


@pytest.mark.parametrize("data, expected", [
    (natpmp(7, "11.0.0.9"), Event(ANNOUNCE, "NAT-PMP announcement: external address 11.0.0.9, epoch 7", 7, "11.0.0.9")),
    (pcp_announce(3), Event(ANNOUNCE, "PCP ANNOUNCE, epoch 3", 3)),
    (natpmp(7, "11.0.0.9", result=3), None),  # an error answer announces nothing
    (natpmp(7, "11.0.0.9", op=129), None),  # a mapping answer, not an announcement
    (natpmp(7, "11.0.0.9")[:11], None),  # truncated
    (bytes([2, 0x81]) + bytes(58), None),  # PCP MAP response
    (bytes([2, 0x00]) + bytes(22), None),  # PCP request (R bit clear)
    (b"", None),
    (b"\x01\x80" + bytes(20), None),  # unknown version
])
def test_parse_announcement(data, expected):
    assert parse_announcement(data) == expected


def nl_addr(mtype: int, family: int, index: int, addr: bytes, local: bytes | None = None) -> bytes:
    attrs = struct.pack("=HH", 4 + len(addr), 1) + addr + bytes(-len(addr) % 4)
    if local is not None:
        attrs += struct.pack("=HH", 4 + len(local), 2) + local + bytes(-len(local) % 4)
    body = struct.pack("=BBBBI", family, 24, 0, 0, index) + attrs
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body


def test_parse_netlink_addr():
    data = (nl_addr(RTM_NEWADDR, socket.AF_INET, 3, socket.inet_aton("10.0.1.201"))
            + nl_addr(RTM_DELADDR, socket.AF_INET, 4, socket.inet_aton("1.2.3.4"), local=socket.inet_aton("5.6.7.8"))
            + nl_addr(RTM_NEWADDR, socket.AF_INET6, 2, socket.inet_pton(socket.AF_INET6, "2001:db8::1"))
            + struct.pack("=IHHII", 16, 3, 0, 0, 0))  # NLMSG_DONE: ignored
    changes = parse_netlink_addr(data)
    assert [(c.added, c.family, c.ifindex, c.address) for c in changes] == [
        (True, socket.AF_INET, 3, "10.0.1.201"),
        (False, socket.AF_INET, 4, "5.6.7.8"),  # IFA_LOCAL wins over IFA_ADDRESS (point-to-point peer)
        (True, socket.AF_INET6, 2, "2001:db8::1"),
    ]
    assert parse_netlink_addr(b"\x01\x02") == []
    assert parse_netlink_addr(struct.pack("=IHHII", 9999, RTM_NEWADDR, 0, 0, 0)) == []  # length beyond data


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_announcement_listener_only_trusts_the_gateways_server_port():
    """Unicast datagrams to the listener's port on loopback: from port 5351 of the gateway they count; from
    anywhere else they are ignored."""
    got: list[Event] = []
    seen = threading.Event()
    port = _free_udp_port()

    def on_event(e: Event) -> None:
        got.append(e)
        seen.set()

    listener = AnnouncementListener(on_event, "127.0.0.1", "127.0.0.1", port=port)
    if not listener.start():
        pytest.skip("cannot join 224.0.0.1 on loopback here")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
            other.bind(("127.0.0.1", 0))
            other.sendto(natpmp(1, "11.0.0.5"), ("127.0.0.1", port))  # wrong source port: ignored
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as router:
            router.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                router.bind(("127.0.0.1", 5351))
            except OSError:
                pytest.skip("port 5351 is in use on this machine")
            router.sendto(b"garbage", ("127.0.0.1", port))  # malformed: ignored, listener survives
            router.sendto(natpmp(9, "11.0.0.9"), ("127.0.0.1", port))
        assert seen.wait(2)
        assert [(e.kind, e.epoch, e.external_ip) for e in got] == [(ANNOUNCE, 9, "11.0.0.9")]
    finally:
        listener.stop()


def test_address_listener_reports_a_new_address():
    """A real rtnetlink subscription: adding an address in a fresh network namespace is reported."""
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    name = f"nlsvc-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    try:
        from natlink.lab.netns import enter_netns

        got: list[Event] = []
        seen = threading.Event()
        with enter_netns(name):
            listener = AddressListener(lambda e: (got.append(e), seen.set()))
            assert listener.start()
        try:
            subprocess.run(["ip", "-n", name, "addr", "add", "192.0.2.7/32", "dev", "lo"], check=True)
            assert seen.wait(2)
            assert got[0].kind == HOST_ADDRESS and "+192.0.2.7" in got[0].detail
        finally:
            listener.stop()
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
