"""The lab behaves like the home network it claims to be — checked with the reference
clients (upnpc, natpmpc, knsupdate, kdig), never with natlink's own code."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from natlink.lab import Lab, LabError, check_prerequisites
from natlink.lab.probes import natpmp_public_address

pytestmark = pytest.mark.lab


def upnpc(lab: Lab, *args: str, host: str = "lan", timeout: float = 10):
    return lab.run(host, ["upnpc", "-u", lab.igd_url, *args], check=False, timeout=timeout)


def add_mapping(lab: Lab, internal: int = 3389, external: int = 3390, host: str = "lan"):
    client = lab.lan_ip if host == "lan" else lab.lan2_ip
    return upnpc(lab, "-e", "natlink-lab-test", "-a", client, str(internal), str(external), "TCP", host=host)


def natpmpc_public(lab: Lab, timeout: float = 10):
    return lab.run("lan", ["natpmpc", "-g", lab.gateway], check=False, timeout=timeout)


@pytest.fixture(scope="module")
def shared_lab() -> Iterator[Lab]:
    """A normal lab for tests that do not change the router's state."""
    with Lab("normal") as lab:
        yield lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh normal lab for tests that reboot, re-address or block things (~0.1 s)."""
    with Lab("normal") as lab:
        yield lab


def test_prerequisites_met_here() -> None:
    assert check_prerequisites() == []


def test_attributes(shared_lab: Lab) -> None:
    lab = shared_lab
    assert lab.ns("lan") == f"natlink-lab-{lab.tag}-lan"
    assert set(lab.hosts) == {"lan", "lan2", "rtr", "wan"}
    assert lab.igd_url == "http://10.0.1.1:5000/rootDesc.xml"
    assert (lab.wan_ip, lab.wan_host_ip, lab.dns_server) == ("11.0.0.2", "11.0.0.1", "11.0.0.1")
    assert len(lab.lan_ifname) <= 15
    assert lab.miniupnpd_pid and os.path.exists(f"/proc/{lab.miniupnpd_pid}")
    with open(lab.tsig_key_file) as fh:
        key_text = fh.read()
    assert f'key "{lab.tsig_key_name}"' in key_text and lab.tsig_secret in key_text
    assert "algorithm hmac-sha256;" in key_text
    with pytest.raises(LabError):
        lab.ns("dmz")


def test_upnpc_mapping_reaches_lan_service(lab: Lab) -> None:
    service = lab.tcp_service("lan", 3389)
    result = add_mapping(lab)
    assert result.returncode == 0, result.stdout
    assert "is redirected to internal 10.0.1.201:3389" in result.stdout
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == b"RDP-STANDIN\n"
    assert service.connections == 1
    assert service.peers[0][0] == lab.wan_host_ip  # DNAT keeps the real client address
    listing = upnpc(lab, "-l")
    assert re.search(r"TCP\s+3390->10\.0\.1\.201:3389", listing.stdout), listing.stdout


def test_natpmpc_reports_wan_address(shared_lab: Lab) -> None:
    result = natpmpc_public(shared_lab)
    assert result.returncode == 0, result.stdout
    assert "Public IP address : 11.0.0.2" in result.stdout


def test_lan2_is_on_the_same_lan_and_secure_mode_applies(lab: Lab) -> None:
    lab.tcp_service("lan", 3389)
    assert lab.tcp_banner("lan2", lab.lan_ip, 3389) == b"RDP-STANDIN\n"
    # secure_mode: lan2 may not map a port to another LAN host
    result = upnpc(lab, "-e", "x", "-a", lab.lan_ip, "3389", "3391", "TCP", host="lan2")
    assert result.returncode != 0
    assert "718" in result.stdout or "606" in result.stdout, result.stdout


@pytest.mark.parametrize("scenario", ["cgnat", "double-nat"])
def test_no_public_address_means_no_mapping(scenario: str) -> None:
    with Lab(scenario, lan2=False) as lab:
        assert not lab.wan_ip.startswith("11.")
        assert lab.dns_server == lab.wan_host_ip
        result = add_mapping(lab)
        assert "failed with code 501" in result.stdout, result.stdout
        assert re.search(r"^ExternalIPAddress = $", result.stdout, re.M), result.stdout
        assert natpmpc_public(lab).returncode != 0
        # outbound NAT still works: the LAN reaches the carrier-side host
        lab.tcp_service("wan", 8080, banner=b"carrier\n")
        assert lab.tcp_banner("lan", lab.wan_host_ip, 8080) == b"carrier\n"


def test_ip_change(lab: Lab) -> None:
    lab.tcp_service("lan", 3389)
    assert add_mapping(lab).returncode == 0
    lab.ip_change("11.0.0.7")
    assert lab.wan_ip == "11.0.0.7"
    result = natpmpc_public(lab)
    assert "Public IP address : 11.0.0.7" in result.stdout, result.stdout
    assert "ExternalIPAddress = 11.0.0.7" in upnpc(lab, "-s").stdout
    # the existing mapping follows the router to its new address
    assert lab.tcp_banner("wan", "11.0.0.7", 3390) == b"RDP-STANDIN\n"
    # an address outside the WAN host's /24 still routes
    lab.ip_change("11.0.5.9")
    assert "Public IP address : 11.0.5.9" in natpmpc_public(lab).stdout
    assert lab.tcp_banner("wan", "11.0.5.9", 3390) == b"RDP-STANDIN\n"


def test_router_reboot_forgets_mappings(lab: Lab) -> None:
    lab.tcp_service("lan", 3389)
    assert add_mapping(lab).returncode == 0
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == b"RDP-STANDIN\n"
    time.sleep(2.1)  # the epoch has 1 s granularity: >= 2 now, <= 1 right after the reboot
    epoch_before = lab.call("lan", natpmp_public_address, lab.gateway).epoch
    old_pid = lab.miniupnpd_pid
    lab.router_reboot()
    assert lab.miniupnpd_pid not in (None, old_pid)
    assert lab.call("lan", natpmp_public_address, lab.gateway).epoch < epoch_before
    listing = upnpc(lab, "-l")
    assert "3390->" not in listing.stdout, listing.stdout
    with pytest.raises(ConnectionRefusedError):
        lab.tcp_banner("wan", lab.wan_ip, 3390, timeout=2)


def test_router_down_clients_fail_fast(lab: Lab) -> None:
    lab.router_down()
    assert lab.miniupnpd_pid is None
    for run in (lambda: upnpc(lab, "-s"), lambda: natpmpc_public(lab)):
        started = time.monotonic()
        result = run()
        assert result.returncode != 0
        assert time.monotonic() - started < 1.0
    lab.router_up()
    assert natpmpc_public(lab).returncode == 0


def test_router_can_start_down() -> None:
    with Lab(miniupnpd=False, knot=False, lan2=False) as lab:
        assert lab.miniupnpd_pid is None
        assert natpmpc_public(lab).returncode != 0
        lab.router_up()
        assert natpmpc_public(lab).returncode == 0


def test_blocked_port_times_out(lab: Lab) -> None:
    lab.tcp_service("lan", 3389)
    assert add_mapping(lab).returncode == 0
    lab.blocked_port(3390)
    with pytest.raises((TimeoutError, socket.timeout)):
        lab.tcp_banner("wan", lab.wan_ip, 3390, timeout=0.5)
    lab.unblock_port(3390)
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == b"RDP-STANDIN\n"


def test_knsupdate_with_tsig_then_kdig(shared_lab: Lab) -> None:
    lab = shared_lab
    script = (
        f"server {lab.dns_server} {lab.dns_port}\nzone {lab.zone}.\n"
        f"update delete rdp.{lab.zone}. A\nupdate add rdp.{lab.zone}. 60 A 11.0.0.2\nsend\n"
    )
    lab.run("lan", ["knsupdate", "-k", lab.tsig_knot_key_file], input=script)
    answer = lab.run("lan", ["kdig", f"@{lab.dns_server}", f"rdp.{lab.zone}", "A", "+short"])
    assert answer.stdout.strip() == "11.0.0.2"
    # without the key the server refuses
    denied = lab.run("lan", ["knsupdate"], input=script.replace("11.0.0.2", "11.0.0.9"), check=False)
    assert denied.returncode != 0
    assert lab.run("wan", ["kdig", f"@{lab.dns_server}", f"rdp.{lab.zone}", "A", "+short"]).stdout.strip() == "11.0.0.2"


def test_set_conntrack_timeout(shared_lab: Lab) -> None:
    lab = shared_lab
    lab.set_conntrack_timeout(5, loose=False)
    read = lambda key: lab.run("rtr", ["sysctl", "-n", key]).stdout.strip()  # noqa: E731
    assert read("net.netfilter.nf_conntrack_tcp_timeout_established") == "5"
    assert read("net.netfilter.nf_conntrack_tcp_loose") == "0"
    lab.set_conntrack_timeout(432000, loose=True)
    assert read("net.netfilter.nf_conntrack_tcp_loose") == "1"
    with open("/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established") as fh:
        assert fh.read().strip() != "5"  # the host's own setting is untouched


def test_run_reports_failures(shared_lab: Lab) -> None:
    with pytest.raises(LabError, match="exit 3"):
        shared_lab.run("lan", ["sh", "-c", "echo oops >&2; exit 3"])
    with pytest.raises(LabError, match="timed out"):
        shared_lab.run("lan", ["sleep", "5"], timeout=0.2)
    assert shared_lab.run("lan", ["sh", "-c", "echo $X"], env={"X": "y"}).stdout == "y\n"


def test_conntrack_idle_timeout_resets_idle_mapped_connection(lab: Lab) -> None:
    """With loose=False an idle mapped flow is forgotten and the next packet gets a RST."""
    server = lab.call("lan", socket.create_server, ("0.0.0.0", 3389))

    def echo_once() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(100):
                conn.sendall(data)

    threading.Thread(target=echo_once, daemon=True).start()
    try:
        assert add_mapping(lab).returncode == 0
        lab.set_conntrack_timeout(1, loose=False)
        client = lab.call("wan", socket.create_connection, (lab.wan_ip, 3390), 2)
        with client:
            client.sendall(b"a")
            assert client.recv(10) == b"a"
            time.sleep(2.5)
            with pytest.raises(ConnectionResetError):
                client.sendall(b"b")
                client.recv(10)
    finally:
        server.close()
