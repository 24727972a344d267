"""An in-process fake gateway on loopback: NAT-PMP + PCP on one UDP port, SSDP unicast answers (after a delay,
as miniupnpd holds them), and a UPnP IGD v2 over HTTP (root description + SOAP) that the real miniupnpc
binding talks to. It answers as the RFCs and the IGD spec say, counts what it received, and can act out
router quirks seen in the wild (``Quirks``). Not a test module: tests/unit/test_portmap_fake_gateway.py uses it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVICE = "urn:schemas-upnp-org:service:WANIPConnection:2"


@dataclass
class Quirks:
    drop_udp: int = 0  # drop this many NAT-PMP/PCP requests first (exercises the retransmits)
    drop_maps: int = 0  # drop this many NAT-PMP/PCP map requests (not public-address / ANNOUNCE) first
    ssdp_delay: float = 0.05
    permanent_only: int | None = None  # 725 or 402 for a non-zero lease
    external_ip: str = "11.0.0.2"  # "0.0.0.0" / "": not connected
    table_full: bool = False  # 501 on AddPortMapping
    forget_adds: bool = False  # answer success, store nothing
    list_garbage: bool = False  # GetListOfPortMappings answers broken chunked encoding
    pcp_third_party: bool = False
    offer_port: int | None = None  # NAT-PMP/PCP: map this external port instead of the one asked (it was taken)


@dataclass
class FakeService:
    """One WAN connection service at its control path: its own state and table (``Connected`` / an address)."""

    service_type: str = SERVICE
    status: str = "Connected"
    external_ip: str | None = None  # None: the gateway's quirks.external_ip
    table: dict[tuple[str, int], "Entry"] = field(default_factory=dict)


@dataclass
class Entry:
    internal_ip: str
    internal_port: int
    description: str
    lease: int


def _mapped(ip: str) -> bytes:
    return ipaddress.IPv6Address("::ffff:" + ip).packed


@dataclass
class FakeGateway:
    quirks: Quirks = field(default_factory=Quirks)
    host: str = "127.0.0.1"
    table: dict[tuple[str, int], Entry] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=lambda: {"natpmp": 0, "pcp": 0, "ssdp": 0, "soap": 0})
    # control path -> service; root-description path -> document (each is one IGD answering SSDP). Empty: the
    # IGD v2 below with one WANIPConnection:2 whose table is ``table``.
    services: dict[str, FakeService] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    posts: list[tuple[str, str]] = field(default_factory=list)  # (control path, action) of every SOAP request
    gets: list[str] = field(default_factory=list)  # paths of every description request
    started_at: float = field(default_factory=time.monotonic)
    _socks: list[socket.socket] = field(default_factory=list)
    _http: ThreadingHTTPServer | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeGateway":
        if not self.services:
            self.services = {"/ctl/IPConn": FakeService(table=self.table)}
        if not self.descriptions:
            self.descriptions = {"/rootDesc.xml": DESCRIPTION}
        self.pmp = self._udp_socket()
        self.ssdp = self._udp_socket()
        gw = self

        class Handler(_Soap):
            gateway = gw

        self._http = ThreadingHTTPServer((self.host, 0), Handler)
        self.http_port = self._http.server_address[1]
        for target in (self._serve_pmp, self._serve_ssdp, self._http.serve_forever):
            threading.Thread(target=target, daemon=True, name="fake-gateway").start()
        return self

    def _udp_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.host, 0))
        sock.settimeout(0.1)
        self._socks.append(sock)
        return sock

    @property
    def pmp_port(self) -> int:
        return self.pmp.getsockname()[1]

    @property
    def ssdp_port(self) -> int:
        return self.ssdp.getsockname()[1]

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def urls(self) -> list[str]:
        return [f"http://{self.host}:{self.http_port}{path}" for path in self.descriptions]

    def actions(self, action: str) -> list[str]:
        """The control paths that received ``action``."""
        return [path for path, name in self.posts if name == action]

    def stop(self) -> None:
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for sock in self._socks:
            sock.close()

    def restart_daemon(self, keep_epoch: bool = True) -> None:
        """Forget every mapping; with keep_epoch the epoch keeps counting (miniupnpd system_uptime=yes)."""
        with self._lock:
            self.table.clear()
            if not keep_epoch:
                self.started_at = time.monotonic()

    @property
    def epoch(self) -> int:
        return int(time.monotonic() - self.started_at) + 1000

    def __enter__(self) -> "FakeGateway":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ NAT-PMP / PCP

    def _serve_pmp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.pmp.recvfrom(1100)
            except (TimeoutError, OSError):
                continue
            kind = "pcp" if data[:1] == b"\x02" else "natpmp"
            self.received[kind] += 1
            if self.quirks.drop_udp > 0:
                self.quirks.drop_udp -= 1
                continue
            if self.quirks.drop_maps > 0 and data[1:2] != b"\x00":
                self.quirks.drop_maps -= 1
                continue
            answer = self._pcp(data, peer[0]) if kind == "pcp" else self._natpmp(data, peer[0])
            if answer:
                self.pmp.sendto(answer, peer)

    def _natpmp(self, data: bytes, sender: str) -> bytes:
        op = data[1]
        if op == 0:
            return struct.pack("!BBHI4s", 0, 128, 0, self.epoch, socket.inet_aton(self.quirks.external_ip or "0.0.0.0"))
        _, _, _, internal, external, lifetime = struct.unpack("!BBHHHI", data[:12])
        proto = {1: "udp", 2: "tcp"}[op]
        external = self.quirks.offer_port or external if lifetime else external
        with self._lock:
            if lifetime == 0:
                for key in [k for k, e in self.table.items() if k[0] == proto and e.internal_port == internal]:
                    del self.table[key]
            else:
                self.table[(proto, external)] = Entry(sender, internal, f"NAT-PMP {external} {proto}", lifetime)
        return struct.pack("!BBHIHHI", 0, 128 + op, 0, self.epoch, internal, external, lifetime)

    def _pcp(self, data: bytes, sender: str) -> bytes:
        op, lifetime = data[1], struct.unpack_from("!I", data, 4)[0]
        head = struct.pack("!BBBBII", 2, 0x80 | op, 0, 0, lifetime, self.epoch) + bytes(12)
        if op == 0:
            return head
        nonce, (proto_num, internal, external) = data[24:36], struct.unpack_from("!B3xHH", data, 36)
        proto = {6: "tcp", 17: "udp"}[proto_num]
        external = self.quirks.offer_port or external if lifetime else external
        target, result = sender, 0
        if len(data) >= 80 and data[60] == 1:  # THIRD_PARTY
            target = str(ipaddress.IPv6Address(data[64:80]).ipv4_mapped)
            result = 0 if self.quirks.pcp_third_party else 5  # UNSUPP_OPTION
        if result == 0:
            with self._lock:
                if lifetime == 0:
                    self.table.pop((proto, external or internal), None)
                    self.table = {k: e for k, e in self.table.items() if not (k[0] == proto and e.internal_port ==
                                                                               internal and e.internal_ip == target)}
                else:
                    self.table[(proto, external)] = Entry(target, internal, f"PCP {external} {proto}", lifetime)
        head = head[:3] + bytes([result]) + head[4:]
        body = nonce + struct.pack("!B3xHH", proto_num, internal, external) + _mapped(self.quirks.external_ip or
                                                                                      "0.0.0.0")
        return head + body + (data[60:80] if len(data) >= 80 and result == 0 else b"")

    # ------------------------------------------------------------------ SSDP

    def _serve_ssdp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.ssdp.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            if not data.startswith(b"M-SEARCH"):
                continue
            self.received["ssdp"] += 1
            st = re.search(rb"(?im)^ST:\s*(\S+)", data)
            answers = [(f"HTTP/1.1 200 OK\r\nST: {st.group(1).decode() if st else ''}\r\nLOCATION: {url}\r\n"
                        "SERVER: fake/1.0 UPnP/1.1\r\n\r\n").encode() for url in self.urls]
            timer = threading.Timer(self.quirks.ssdp_delay, self._reply, (answers, peer))
            timer.daemon = True
            timer.start()

    def _reply(self, answers: list[bytes], peer: Any) -> None:
        for answer in answers:  # one per IGD, sent together as one SSDP daemon answering for several does
            try:
                self.ssdp.sendto(answer, peer)
            except OSError:
                pass


DESCRIPTION = f"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><friendlyName>fake</friendlyName>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId><controlURL>/ctl/CmnIfCfg</controlURL>
<eventSubURL>/evt/CmnIfCfg</eventSubURL><SCPDURL>/WANCfg.xml</SCPDURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>
<serviceList><service><serviceType>{SERVICE}</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>
"""


class _Soap(BaseHTTPRequestHandler):
    gateway: FakeGateway
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.gateway.gets.append(self.path)
        document = self.gateway.descriptions.get(self.path)
        if document is None:
            return self._send(404, b"")
        self._send(200, document.encode())

    def do_POST(self) -> None:  # noqa: N802
        gw = self.gateway
        gw.received["soap"] += 1
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        soap_action = self.headers.get("SOAPAction", "").strip('"')
        action = (soap_action.split("#") + [""])[1]
        gw.posts.append((self.path, action))
        self.service = gw.services.get(self.path)
        if self.service is None:
            return self._send(404, b"")
        if not soap_action.startswith(self.service.service_type + "#"):
            return self._fault(401, "Invalid Action")  # another service's type at this control URL
        args = dict(re.findall(r"<(New\w+)>([^<]*)</\1>", body))
        args.update({k: "" for k in re.findall(r"<(New\w+)\s*/>", body)})
        handler = getattr(self, f"_{action}", None)
        if handler is None:
            return self._fault(401, "Invalid Action")
        with gw._lock:
            handler(gw, args)

    @property
    def table(self) -> dict[tuple[str, int], Entry]:
        return self.service.table

    def _external(self, gw: FakeGateway) -> str:
        return self.service.external_ip if self.service.external_ip is not None else gw.quirks.external_ip

    def _GetExternalIPAddress(self, gw: FakeGateway, a: dict[str, str]) -> None:  # noqa: N802
        self._ok("GetExternalIPAddress", {"NewExternalIPAddress": self._external(gw)})

    def _GetStatusInfo(self, gw: FakeGateway, a: dict[str, str]) -> None:  # noqa: N802
        self._ok("GetStatusInfo", {"NewConnectionStatus": self.service.status, "NewLastConnectionError": "ERROR_NONE",
                                   "NewUptime": 42})

    def _AddPortMapping(self, gw: FakeGateway, a: dict[str, str]) -> None:  # noqa: N802
        lease, q = int(a.get("NewLeaseDuration") or 0), gw.quirks
        if q.permanent_only and lease:
            return self._fault(q.permanent_only, "OnlyPermanentLeasesSupported" if q.permanent_only == 725
                               else "Invalid Args")
        if q.table_full:
            return self._fault(501, "Action Failed")
        if int(a["NewExternalPort"]) == 0:
            return self._fault(716, "WildCardNotPermittedInExtPort")
        if not q.forget_adds:
            self.table[(a["NewProtocol"].lower(), int(a["NewExternalPort"]))] = Entry(
                a["NewInternalClient"], int(a["NewInternalPort"]), a.get("NewPortMappingDescription", ""), lease)
        self._ok("AddPortMapping", {})

    def _DeletePortMapping(self, gw: FakeGateway, a: dict[str, str]) -> None:  # noqa: N802
        if self.table.pop((a["NewProtocol"].lower(), int(a["NewExternalPort"])), None) is None:
            return self._fault(714, "NoSuchEntryInArray")
        self._ok("DeletePortMapping", {})

    def _GetSpecificPortMappingEntry(self, gw: FakeGateway, a: dict[str, str]) -> None:  # noqa: N802
        e = self.table.get((a["NewProtocol"].lower(), int(a["NewExternalPort"])))
        if e is None:
            return self._fault(714, "NoSuchEntryInArray")
        self._ok("GetSpecificPortMappingEntry", {"NewInternalPort": e.internal_port, "NewInternalClient": e.internal_ip,
                                                 "NewEnabled": 1, "NewPortMappingDescription": e.description,
                                                 "NewLeaseDuration": e.lease})

    def _GetGenericPortMappingEntry(self, gw: FakeGateway, a: dict[str, str]) -> None:  # noqa: N802
        items = sorted(self.table.items())
        i = int(a["NewPortMappingIndex"])
        if i >= len(items):
            return self._fault(713, "SpecifiedArrayIndexInvalid")
        (proto, ext), e = items[i]
        self._ok("GetGenericPortMappingEntry", {
            "NewRemoteHost": "", "NewExternalPort": ext, "NewProtocol": proto.upper(), "NewInternalPort": e.internal_port,
            "NewInternalClient": e.internal_ip, "NewEnabled": 1, "NewPortMappingDescription": e.description,
            "NewLeaseDuration": e.lease})

    def _GetListOfPortMappings(self, gw: FakeGateway, a: dict[str, str]) -> None:  # noqa: N802
        if gw.quirks.list_garbage:
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"zz-not-hex\r\n<garbage>\r\n0\r\n\r\n")
            return
        proto = a["NewProtocol"].lower()
        entries = "".join(
            f"<p:PortMappingEntry><p:NewRemoteHost></p:NewRemoteHost><p:NewExternalPort>{ext}</p:NewExternalPort>"
            f"<p:NewProtocol>{p.upper()}</p:NewProtocol><p:NewInternalPort>{e.internal_port}</p:NewInternalPort>"
            f"<p:NewInternalClient>{e.internal_ip}</p:NewInternalClient><p:NewEnabled>1</p:NewEnabled>"
            f"<p:NewDescription>{e.description}</p:NewDescription><p:NewLeaseTime>{e.lease}</p:NewLeaseTime>"
            "</p:PortMappingEntry>" for (p, ext), e in sorted(self.table.items()) if p == proto)
        listing = f'<p:PortMappingList xmlns:p="urn:schemas-upnp-org:gw:WANIPConnection">{entries}</p:PortMappingList>'
        self._ok("GetListOfPortMappings", {"NewPortListing": f"<![CDATA[{listing}]]>"})

    def _ok(self, action: str, out: dict[str, Any]) -> None:
        args = "".join(f"<{k}>{v}</{k}>" for k, v in out.items())
        self._send(200, (f'<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
                         f'<s:Body><u:{action}Response xmlns:u="{self.service.service_type}">{args}'
                         f'</u:{action}Response></s:Body>'
                         "</s:Envelope>").encode())

    def _fault(self, code: int, text: str) -> None:
        self._send(500, ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
                         '<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>'
                         '<detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">'
                         f"<errorCode>{code}</errorCode><errorDescription>{text}</errorDescription></UPnPError>"
                         "</detail></s:Fault></s:Body></s:Envelope>").encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", 'text/xml; charset="utf-8"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
