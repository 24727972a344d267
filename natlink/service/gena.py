"""UPnP GENA eventing (UPnP Device Architecture 1.1 §4) on the router's WANIPConnection/WANPPPConnection
service: SUBSCRIBE, renew at half the granted TIMEOUT, re-subscribe when a renewal fails (a rebooted router
has forgotten its SIDs), UNSUBSCRIBE on stop; a tiny HTTP listener on the LAN address takes the NOTIFYs.

Like the NAT-PMP/PCP announcements, a NOTIFY only *triggers* a look at the router; its contents are not
trusted. It is accepted only from the gateway's address, on our callback path, with our SID, within a small
body limit, and parsed with defusedxml (natlink.portmap.xmlsafe: no DTD or entities in any encoding).
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import re
import secrets
import socketserver
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

from natlink.net.http import LAN_AGENT, HttpClient, HttpError, HttpResponse
from natlink.service.events import Event
from natlink.service.policy import GENA

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024  # a WANIPConnection property set is ~450 bytes
MAX_DESCRIPTION = 256 * 1024
REQUESTED_TIMEOUT = 1800  # seconds; the router may grant another value
MIN_RENEW = 10.0  # never renew more often than this, whatever the router grants
RETRY_DELAYS = (2.0, 5.0, 10.0, 30.0, 60.0)  # after a failed (re-)subscription
WATCHED = ("ExternalIPAddress", "ConnectionStatus")


class GenaError(ValueError):
    """A document or header the router (or someone else) sent that we do not accept."""


# --------------------------------------------------------------------------- pure parsers


def safe_xml(data: bytes, limit: int) -> ElementTree.Element:
    """Parse a small XML document; no DOCTYPE or entity declarations (billion laughs, external entities)."""
    from natlink.portmap.xmlsafe import RouterXmlError, parse

    try:
        return parse(data, limit)
    except RouterXmlError as exc:
        raise GenaError(str(exc)) from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_propertyset(data: bytes) -> dict[str, str]:
    """The variables in a GENA NOTIFY body: <e:propertyset><e:property><Name>value</Name>… -> {Name: value}."""
    root = safe_xml(data, MAX_BODY)
    if _local(root.tag) != "propertyset":
        raise GenaError(f"root element is {_local(root.tag)!r}, not propertyset")
    out: dict[str, str] = {}
    for prop in root:
        if _local(prop.tag) != "property":
            continue
        for var in prop:
            out[_local(var.tag)] = (var.text or "").strip()
    return out


def parse_timeout(value: str | None) -> int:
    """TIMEOUT: Second-N -> N; "Second-infinite" (deprecated) or missing -> what we asked for."""
    m = re.fullmatch(r"\s*Second-(\d{1,9})\s*", value or "", re.IGNORECASE)
    if not m:
        return REQUESTED_TIMEOUT
    return max(1, int(m.group(1)))


def renew_after(granted: int) -> float:
    """Renew at half the granted subscription time (but not in a tight loop)."""
    return max(MIN_RENEW, granted / 2)


def event_url(description: bytes, root_url: str) -> str | None:
    """The eventSubURL of the first WANIPConnection (or WANPPPConnection) service in a root description,
    absolute: read by natlink.portmap.igd_services, which reads the same description for the mappings."""
    from natlink.portmap.igd_services import parse_description
    from natlink.portmap.xmlsafe import RouterXmlError

    try:
        services = parse_description(description, root_url)
    except RouterXmlError as exc:
        raise GenaError(str(exc)) from None
    return next((s.event_url for s in services if s.event_url), None)


def chosen_event_url(description: bytes, root_url: str, chosen: Any, gateway: str | None = None) -> str | None:
    """The eventSubURL of the WAN connection service natlink maps on, when it chose among several (state
    "router" -> "wan_service": type and control URL); None when there was no choice or it is not listed."""
    if not isinstance(chosen, dict):
        return None
    from natlink.portmap import igd_services
    from natlink.portmap.xmlsafe import RouterXmlError

    try:
        hit = igd_services.cached(igd_services.parse_description(description, root_url, gateway), chosen)
    except RouterXmlError:
        return None
    return hit.service.event_url if hit is not None else None


def notify_problem(headers: Any, path: str, client_ip: str, *, gateway: str, sid: str | None,
                   callback_path: str) -> tuple[int, str] | None:
    """Why a NOTIFY request is refused (HTTP status, reason), or None when it is ours."""
    if client_ip != gateway:
        return 403, f"NOTIFY from {client_ip}, not the gateway {gateway}"
    if path != callback_path:
        return 404, "not our callback path"
    if headers.get("NT") != "upnp:event" or headers.get("NTS") != "upnp:propchange":
        return 400, "NT/NTS are not upnp:event/upnp:propchange"
    if sid is None or headers.get("SID") != sid:
        return 412, f"SID {headers.get('SID')!r} is not ours"
    try:
        length = int(headers.get("Content-Length") or "")
    except ValueError:
        return 411, "no Content-Length"
    if length < 0 or length > MAX_BODY:
        return 413, f"body of {length} bytes"
    return None


# --------------------------------------------------------------------------- subscriber


class GenaSubscriber:
    """Subscribes to the router's WAN connection service and turns NOTIFYs that change ExternalIPAddress or
    ConnectionStatus (or a lost subscription) into Event(GENA, …) triggers."""

    name = "UPnP event subscriber"

    def __init__(self, on_event: Callable[[Event], None], root_url: str, lan_ip: str, gateway: str | None = None,
                 *, timeout: float = 2.0, requested: int = REQUESTED_TIMEOUT, wan_service: Any = None) -> None:
        self.on_event = on_event
        self.root_url = root_url
        self.wan_service = wan_service  # the service natlink chose among several (state "router"), if it did
        self.lan_ip = lan_ip
        self.gateway = gateway or (urlsplit(root_url).hostname or "")
        self.timeout = timeout
        self.requested = requested
        self.event_url: str | None = None
        self.sid: str | None = None
        self.granted = 0
        self.callback_path = f"/natlink-gena/{secrets.token_hex(8)}"
        self._lock = threading.Lock()  # held while (re)subscribing, so a fast first NOTIFY sees the new SID
        self._seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ---- lifecycle

    def start(self) -> bool:
        try:
            client = HttpClient(timeout=self.timeout, user_agent=LAN_AGENT, max_body=MAX_DESCRIPTION)
            resp = client.request("GET", self.root_url)
            if resp.status != 200:
                raise GenaError(f"{self.root_url} answered HTTP {resp.status}")
            self.event_url = (chosen_event_url(resp.body, self.root_url, self.wan_service, self.gateway)
                              or event_url(resp.body, self.root_url))
            if not self.event_url:
                log.info("%s not started: %s lists no WAN connection eventSubURL", self.name, self.root_url)
                return False
            self._server = _make_server(self)
        except (OSError, HttpError, GenaError) as exc:
            log.warning("%s not started: %s (polling still covers it)", self.name, exc)
            return False
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                 name="natlink-gena-http", daemon=True)
        keep = threading.Thread(target=self._keep_subscribed, name="natlink-gena-renew", daemon=True)
        self._threads = [serve, keep]
        serve.start()
        keep.start()
        return True

    @property
    def callback(self) -> str:
        assert self._server is not None
        return f"http://{self.lan_ip}:{self._server.server_address[1]}{self.callback_path}"

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            sid, self.sid = self.sid, None
        if sid and self.event_url:
            with contextlib.suppress(HttpError):
                self._request("UNSUBSCRIBE", {"SID": sid}, timeout=min(self.timeout, 0.5))
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout=1)

    # ---- subscription

    def _request(self, method: str, headers: dict[str, str], timeout: float | None = None) -> HttpResponse:
        assert self.event_url is not None
        client = HttpClient(timeout=timeout or self.timeout, user_agent=LAN_AGENT, source=self.lan_ip or None,
                            max_body=MAX_BODY)
        return client.request(method, self.event_url, headers=headers)

    def subscribe(self) -> bool:
        """A new subscription (our SID replaced); False when the router refused or did not answer."""
        with self._lock:
            if self._stop.is_set():  # stop() takes the SID under this lock: none may appear after it
                return False
            try:
                resp = self._request("SUBSCRIBE", {"CALLBACK": f"<{self.callback}>", "NT": "upnp:event",
                                                   "TIMEOUT": f"Second-{self.requested}"})
            except HttpError as exc:
                log.debug("GENA SUBSCRIBE failed: %s", exc)
                return False
            sid = resp.headers.get("sid")
            if resp.status != 200 or not sid:
                log.debug("GENA SUBSCRIBE answered %s (SID %r)", resp.status, sid)
                return False
            self.sid, self.granted = sid.strip(), parse_timeout(resp.headers.get("timeout"))
        log.info("subscribed to UPnP events at %s (%s, %d s)", self.event_url, self.sid, self.granted)
        return True

    def renew(self) -> bool:
        with self._lock:
            if not self.sid:
                return False
            try:
                resp = self._request("SUBSCRIBE", {"SID": self.sid, "TIMEOUT": f"Second-{self.requested}"})
            except HttpError as exc:
                log.debug("GENA renewal failed: %s", exc)
                return False
            if resp.status != 200 or (resp.headers.get("sid") or "").strip() != self.sid:
                log.debug("GENA renewal answered %s", resp.status)
                return False
            self.granted = parse_timeout(resp.headers.get("timeout"))
        return True

    def _keep_subscribed(self) -> None:
        failures = 0
        lost = False  # had a subscription and lost it: the router probably restarted
        while not self._stop.is_set():
            if self.sid:
                if self.renew():
                    failures = 0
                    self._stop.wait(renew_after(self.granted))
                    continue
                lost = True  # renewal refused or unanswered: start over with a new subscription
                with self._lock:
                    self.sid = None
            if self.subscribe():
                if lost:
                    log.info("UPnP event subscription was lost and renewed (router restarted?)")
                    self.on_event(Event(GENA, "UPnP event subscription lost and renewed (router restarted?)"))
                failures, lost = 0, False
                wait = renew_after(self.granted)
            else:
                wait = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
            self._stop.wait(wait)

    # ---- notifications

    def handle_notify(self, headers: Any, path: str, client_ip: str, read: Callable[[int], bytes]) -> tuple[int, str]:
        with self._lock:
            sid = self.sid
        problem = notify_problem(headers, path, client_ip, gateway=self.gateway, sid=sid,
                                 callback_path=self.callback_path)
        if problem is not None:
            log.debug("GENA NOTIFY refused: %s", problem[1])
            return problem
        body = read(int(headers["Content-Length"]))
        try:
            props = parse_propertyset(body)
        except GenaError as exc:
            log.debug("GENA NOTIFY refused: %s", exc)
            return 400, str(exc)
        changed = []
        for name in WATCHED:
            if name in props:
                old = self._seen.get(name)
                self._seen[name] = props[name]
                if old is not None and old != props[name]:
                    changed.append(f"{name} {old or 'none'} -> {props[name] or 'none'}")
        if changed:
            self.on_event(Event(GENA, f"UPnP event (SEQ {headers.get('SEQ')}): {', '.join(changed)}"))
        return 200, "OK"


def _make_server(sub: GenaSubscriber) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 5  # a slow or stuck sender cannot hold a thread for long

        def do_NOTIFY(self) -> None:  # noqa: N802 (the HTTP method's name)
            status, reason = sub.handle_notify(self.headers, self.path, self.client_address[0], self.rfile.read)
            self.send_response(status, reason if status != 200 else None)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 16

        def server_bind(self) -> None:
            # HTTPServer.server_bind calls socket.getfqdn(): a reverse DNS lookup that can stall for seconds
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    server = Server((sub.lan_ip, 0), Handler)
    log.info("listening for UPnP events on %s:%s", sub.lan_ip, server.server_address[1])
    return server


__all__ = ["GenaSubscriber", "GenaError", "parse_propertyset", "parse_timeout", "event_url", "notify_problem",
           "renew_after", "safe_xml"]
