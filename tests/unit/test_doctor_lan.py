"""Link 1 (LAN address static vs DHCP), link 5 (local connect) and link 6 (ISP-blocked ports)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from natlink.config import MappingCfg
from natlink.doctor.checks_lan import FOREVER, HostAddr, LanEvidence, host_addresses, lan_ip_check, lease_evidence
from natlink.doctor.checks_ports import blocked_port_checks, service_check, suggest_port
from natlink.doctor.model import Status

ETH = HostAddr("eth0", 2, "192.168.1.23", 24, dynamic=False, mac="52:54:00:12:34:56")
DYN = HostAddr("eth0", 2, "192.168.1.23", 24, dynamic=True, valid_lft=85000, mac="52:54:00:12:34:56")


@pytest.mark.parametrize("ev,status,needle", [
    (LanEvidence("192.168.1.23", False, ETH), Status.OK, "static"),
    (LanEvidence("192.168.1.23", False, DYN), Status.WARN, "lifetime 85000 s"),
    (LanEvidence("192.168.1.23", False, ETH, ("systemd-networkd lease /run/x",)), Status.WARN, "systemd-networkd"),
    (LanEvidence("192.168.1.23", True, ETH), Status.OK, "auto"),
    (LanEvidence("192.168.1.50", False, None, (), ("192.168.1.23",)), Status.FAIL, "this host has: 192.168.1.23"),
    (LanEvidence("", True, None), Status.FAIL, "no route"),
])
def test_lan_ip_verdict(ev: LanEvidence, status: Status, needle: str) -> None:
    result = lan_ip_check(ev)
    assert result.status is status and result.link == 1
    assert needle in result.finding
    if status is Status.WARN:
        assert "52:54:00:12:34:56" in result.fix and "reservation" in result.fix


def _write(root: Path, rel: str, data: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def test_lease_files_of_each_client(tmp_path: Path) -> None:
    _write(tmp_path, "run/systemd/netif/leases/2", "# This is private data. Do not parse.\nADDRESS=192.168.1.23\n"
                                                   "NETMASK=255.255.255.0\nROUTER=192.168.1.1\nLIFETIME=86400\n")
    _write(tmp_path, "run/NetworkManager/devices/2", "[device]\nmanaged=true\n\n[dhcp4]\nip_address=192.168.1.23\n"
                                                     "dhcp_lease_time=86400\n")
    _write(tmp_path, "var/lib/dhcp/dhclient.eth0.leases",
           'lease {\n  interface "eth0";\n  fixed-address 192.168.1.99;\n}\n'
           'lease {\n  interface "eth0";\n  fixed-address 192.168.1.23;\n  option routers 192.168.1.1;\n}\n')
    bootp = bytearray(300)
    bootp[0] = 2
    bootp[16:20] = socket.inet_aton("192.168.1.23")
    _write(tmp_path, "var/lib/dhcpcd/eth0.lease", bytes(bootp))
    found = lease_evidence(ETH, tmp_path)
    assert [f.split(" ")[0] for f in found] == ["systemd-networkd", "NetworkManager", "dhclient", "dhcpcd"]


def test_leases_for_other_addresses_or_interfaces_do_not_count(tmp_path: Path) -> None:
    _write(tmp_path, "run/systemd/netif/leases/2", "ADDRESS=192.168.1.99\n")
    _write(tmp_path, "run/systemd/netif/leases/3", "ADDRESS=192.168.1.23\n")  # same address, other ifindex
    _write(tmp_path, "run/NetworkManager/devices/2", "[ip4]\nip_address=192.168.1.23\n")  # not the dhcp4 section
    _write(tmp_path, "var/lib/dhcp/dhclient.leases", 'lease {\n  interface "wlan0";\n  fixed-address 192.168.1.23;\n}\n')
    bootp = bytearray(300)
    bootp[16:20] = socket.inet_aton("192.168.1.99")
    _write(tmp_path, "var/lib/dhcpcd/eth0.lease", bytes(bootp))
    assert lease_evidence(ETH, tmp_path) == ()


def test_host_addresses_include_loopback() -> None:
    addrs = host_addresses()
    lo = next(a for a in addrs if a.address == "127.0.0.1")
    assert lo.valid_lft == FOREVER and not lo.dynamic


def m(name: str, external: int, internal: int = 3389, protocol: str = "tcp", ip: str | None = None) -> MappingCfg:
    return MappingCfg(name=name, protocol=protocol, external_port=external, internal_port=internal, internal_ip=ip)


@pytest.mark.parametrize("port,alt", [(80, 8080), (443, 8443), (445, 10445), (1900, 11900), (25, 2525)])
def test_suggested_ports_are_high_and_free_of_the_list(port: int, alt: int) -> None:
    assert suggest_port(port) == alt


def test_blocked_ports() -> None:
    results = blocked_port_checks((m("rdp", 3390), m("web", 80, 8000), m("smb", 445, 445)))
    assert [(r.status, r.subject) for r in results] == [(Status.WARN, "web"), (Status.WARN, "smb")]
    assert "external_port = 8080, internal_port = 8000" in results[0].fix
    assert results[0].cause == "isp-blocked" and results[0].link == 6
    only_ok = blocked_port_checks((m("rdp", 3390),))
    assert [r.status for r in only_ok] == [Status.OK] and "3390" in only_ok[0].finding
    assert blocked_port_checks(())[0].status is Status.SKIPPED


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    yield sock
    sock.close()


def test_service_listening(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = service_check(m("rdp", 3390, port, ip="127.0.0.1"), "")
    assert result.status is Status.OK and f"127.0.0.1:{port} accepts" in result.finding


def test_service_down_says_start_it() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # a port nothing listens on
    result = service_check(m("rdp", 3390, port, ip="127.0.0.1"), "")
    assert result.status is Status.FAIL and result.cause == "not-listening" and result.link == 5
    assert f"start the service on port {port}" in result.fix


def test_service_on_loopback_only(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    other = next((a.address for a in host_addresses() if not a.address.startswith("127.")), None)
    if other is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    result = service_check(m("rdp", 3390, port), other)
    assert result.status is Status.FAIL and result.cause == "loopback-only"
    assert f"listen on {other} or 0.0.0.0" in result.fix


def test_udp_bound() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        assert service_check(m("game", 3390, port, "udp"), "").status is Status.OK
    assert service_check(m("game", 3390, port, "udp"), "").status is Status.FAIL
