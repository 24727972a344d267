"""UPnP GENA: parsing NOTIFY bodies and root descriptions safely, validating NOTIFY requests, and a subscriber
against a stand-in IGD on loopback (SUBSCRIBE, NOTIFY, renewal, re-subscription, UNSUBSCRIBE)."""

from __future__ import annotations

import http.server
import threading
import urllib.request

import pytest

from natlink.service.gena import (
    MAX_BODY, REQUESTED_TIMEOUT, GenaError, GenaSubscriber, chosen_event_url, event_url, notify_problem,
    parse_propertyset, parse_timeout, renew_after,
)
from natlink.service.policy import GENA, MAPPINGS, PUBLIC_IP, jobs_for_event
from waiting import wait_until


def propset(**variables: str) -> bytes:
    props = "".join(f"<e:property><{k}>{v}</{k}></e:property>" for k, v in variables.items())
    return f'<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">{props}</e:propertyset>'.encode()


MINIUPNPD_NOTIFY = (b'<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0"><e:property><PossibleConnectionTypes>'
                    b'IP_Routed</PossibleConnectionTypes></e:property><e:property><ConnectionStatus>Connected'
                    b'</ConnectionStatus></e:property><e:property><ExternalIPAddress>11.0.0.9</ExternalIPAddress>'
                    b'</e:property><e:property><PortMappingNumberOfEntries>0</PortMappingNumberOfEntries>'
                    b'</e:property><e:property><SystemUpdateID>1</SystemUpdateID></e:property></e:propertyset>')


def test_parse_miniupnpd_propertyset():
    assert parse_propertyset(MINIUPNPD_NOTIFY) == {
        "PossibleConnectionTypes": "IP_Routed", "ConnectionStatus": "Connected", "ExternalIPAddress": "11.0.0.9",
        "PortMappingNumberOfEntries": "0", "SystemUpdateID": "1"}


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
    b'<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0"><e:property><X>&lol2;</X></e:property></e:propertyset>',
    b'<!doctype x SYSTEM "file:///etc/passwd"><e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0"/>',
    b'<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0"><!ENTITY x "y"></e:propertyset>',
    b"<e:propertyset",  # not well-formed
    b"",
    b"<html><body>hi</body></html>",  # wrong root
    propset(X="a" * MAX_BODY),  # too large
])
def test_parse_propertyset_rejects(body):
    with pytest.raises(GenaError):
        parse_propertyset(body)


@pytest.mark.parametrize("value, expected", [
    ("Second-1800", 1800), ("second-300", 300), (" Second-60 ", 60), ("Second-0", 1),
    ("Second-infinite", REQUESTED_TIMEOUT), (None, REQUESTED_TIMEOUT), ("garbage", REQUESTED_TIMEOUT),
    ("Second-99999999999", REQUESTED_TIMEOUT),
])
def test_parse_timeout(value, expected):
    assert parse_timeout(value) == expected


def test_renew_at_half_but_not_in_a_tight_loop():
    assert renew_after(1800) == 900
    assert renew_after(4) == 10


ROOT_DESC = b"""<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><serviceList>
<service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><eventSubURL>/evt/L3F</eventSubURL></service>
</serviceList><deviceList><device><deviceList><device><serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>/ctl/IPConn</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL></service></serviceList></device></deviceList></device></deviceList></device></root>"""


def test_event_url_from_root_description():
    assert event_url(ROOT_DESC, "http://10.0.1.1:5000/rootDesc.xml") == "http://10.0.1.1:5000/evt/IPConn"
    ppp = ROOT_DESC.replace(b"WANIPConnection:2", b"WANPPPConnection:1")
    assert event_url(ppp, "http://10.0.1.1:5000/rootDesc.xml") == "http://10.0.1.1:5000/evt/IPConn"
    based = ROOT_DESC.replace(b"<device>", b"<URLBase>http://10.0.1.1:49152/</URLBase><device>", 1)
    assert event_url(based, "http://10.0.1.1:5000/rootDesc.xml") == "http://10.0.1.1:49152/evt/IPConn"
    assert event_url(ROOT_DESC.replace(b"WANIPConnection", b"Other"), "http://10.0.1.1:5000/r.xml") is None
    with pytest.raises(GenaError):
        event_url(b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + ROOT_DESC, "http://10.0.1.1/")


def test_the_event_url_follows_the_service_natlink_chose_among_several():
    from igd_descriptions import FRITZ

    url = "http://192.168.178.1:49000/igddesc.xml"
    ppp = {"type": "urn:schemas-upnp-org:service:WANPPPConnection:1",
           "control_url": "http://192.168.178.1:49000/igdupnp/control/WANPPPConn1"}
    assert chosen_event_url(FRITZ.encode(), url, ppp, "192.168.178.1") == \
        "http://192.168.178.1:49000/igdupnp/control/WANPPPConn1"
    assert event_url(FRITZ.encode(), url) == "http://192.168.178.1:49000/igdupnp/control/WANIPConn1"  # the first
    gone = {**ppp, "control_url": "http://192.168.178.1:49000/gone"}
    assert chosen_event_url(FRITZ.encode(), url, gone) is None and chosen_event_url(FRITZ.encode(), url, None) is None
    assert chosen_event_url(b"<root>AT&T</root>", url, ppp) is None


GOOD = {"NT": "upnp:event", "NTS": "upnp:propchange", "SID": "uuid:1", "Content-Length": "100"}


@pytest.mark.parametrize("changes, client, path, status", [
    ({}, "10.0.1.1", "/cb", None),
    ({}, "10.0.1.7", "/cb", 403),  # another LAN host
    ({}, "10.0.1.1", "/other", 404),
    ({"SID": "uuid:2"}, "10.0.1.1", "/cb", 412),  # someone else's (or an old) subscription
    ({"SID": None}, "10.0.1.1", "/cb", 412),
    ({"NTS": "upnp:other"}, "10.0.1.1", "/cb", 400),
    ({"Content-Length": None}, "10.0.1.1", "/cb", 411),
    ({"Content-Length": "x"}, "10.0.1.1", "/cb", 411),
    ({"Content-Length": str(MAX_BODY + 1)}, "10.0.1.1", "/cb", 413),
    ({"Content-Length": "-1"}, "10.0.1.1", "/cb", 413),
])
def test_notify_problem(changes, client, path, status):
    headers = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    problem = notify_problem(headers, path, client, gateway="10.0.1.1", sid="uuid:1", callback_path="/cb")
    assert (problem[0] if problem else None) == status


def test_no_subscription_yet_refuses_every_notify():
    assert notify_problem(GOOD, "/cb", "10.0.1.1", gateway="10.0.1.1", sid=None, callback_path="/cb")[0] == 412


def test_gena_events_trigger_the_router_poll():
    assert jobs_for_event(GENA) == {PUBLIC_IP, MAPPINGS}


# --------------------------------------------------------------------------- against a stand-in IGD on loopback


class FakeIgd:
    """Serves a root description and answers SUBSCRIBE/UNSUBSCRIBE like miniupnpd; can forget its SIDs."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.sids: set[str] = set()
        self.counter = 0
        self.granted = 1800
        igd = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(200, {}, ROOT_DESC)

            def do_SUBSCRIBE(self) -> None:
                headers = dict(self.headers.items())
                igd.requests.append(("SUBSCRIBE", headers))
                if "SID" in headers:
                    if headers["SID"] not in igd.sids:
                        return self._answer(412, {})
                    return self._answer(200, {"SID": headers["SID"], "TIMEOUT": f"Second-{igd.granted}"})
                igd.counter += 1
                sid = f"uuid:sid-{igd.counter}"
                igd.sids.add(sid)
                self._answer(200, {"SID": sid, "TIMEOUT": f"Second-{igd.granted}"})

            def do_UNSUBSCRIBE(self) -> None:
                igd.requests.append(("UNSUBSCRIBE", dict(self.headers.items())))
                igd.sids.discard(self.headers.get("SID"))
                self._answer(200, {})

            def _answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.root_url = f"http://127.0.0.1:{self.server.server_address[1]}/rootDesc.xml"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def notify(sub: GenaSubscriber, body: bytes, sid: str | None = None, seq: int = 0) -> int:
    req = urllib.request.Request(sub.callback, data=body, method="NOTIFY", headers={
        "NT": "upnp:event", "NTS": "upnp:propchange", "SID": sid or sub.sid or "", "SEQ": str(seq),
        "Content-Type": 'text/xml; charset="utf-8"'})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def igd():
    fake = FakeIgd()
    yield fake
    fake.close()


def test_subscriber_subscribes_takes_notifies_and_unsubscribes(igd):
    events = []
    sub = GenaSubscriber(events.append, igd.root_url, "127.0.0.1", "127.0.0.1")
    assert sub.start()
    try:
        assert wait_until(lambda: sub.sid, timeout=3.0)
        method, headers = igd.requests[0]
        assert method == "SUBSCRIBE" and headers["NT"] == "upnp:event" and headers["TIMEOUT"] == "Second-1800"
        assert headers["CALLBACK"] == f"<{sub.callback}>"
        assert notify(sub, propset(ExternalIPAddress="11.0.0.2", ConnectionStatus="Connected")) == 200
        assert events == []  # the initial NOTIFY only tells the current values
        assert notify(sub, propset(ExternalIPAddress="11.0.0.2", PortMappingNumberOfEntries="1"), seq=1) == 200
        assert events == []  # our own mapping changes are not a reason to look
        assert notify(sub, propset(ExternalIPAddress="11.0.0.9"), seq=2) == 200
        assert [e.kind for e in events] == [GENA]
        assert "ExternalIPAddress 11.0.0.2 -> 11.0.0.9" in events[0].detail
        assert notify(sub, propset(ExternalIPAddress="1.2.3.4"), sid="uuid:not-ours") == 412
        assert notify(sub, b"<!DOCTYPE x []>" + propset(ExternalIPAddress="1.2.3.4")) == 400
        assert len(events) == 1
    finally:
        sid = sub.sid
        sub.stop()
    assert igd.requests[-1] == ("UNSUBSCRIBE", igd.requests[-1][1]) and igd.requests[-1][1]["SID"] == sid
    assert not igd.sids


def test_notify_from_another_address_is_refused(igd):
    sub = GenaSubscriber(lambda e: None, igd.root_url, "127.0.0.1", "127.0.0.9")  # the "gateway" is elsewhere
    assert sub.start()
    try:
        assert wait_until(lambda: sub.sid, timeout=3.0)
        assert notify(sub, propset(ExternalIPAddress="11.0.0.9")) == 403
    finally:
        sub.stop()


def test_renews_at_half_and_resubscribes_when_the_router_forgot_the_sid(igd, monkeypatch):
    import natlink.service.gena as gena

    monkeypatch.setattr(gena, "MIN_RENEW", 0.1)
    igd.granted = 1  # renew every 0.5 s
    events = []
    sub = GenaSubscriber(events.append, igd.root_url, "127.0.0.1", "127.0.0.1")
    assert sub.start()
    try:
        assert wait_until(lambda: sub.sid, timeout=3.0)
        first = sub.sid
        assert wait_until(lambda: any(m == "SUBSCRIBE" and h.get("SID") == first for m, h in igd.requests),
                          timeout=3.0)
        assert sub.sid == first  # renewed, same SID
        igd.sids.clear()  # router reboot: its subscriptions are gone
        assert wait_until(lambda: sub.sid not in (None, first), timeout=5)
        assert wait_until(lambda: events, timeout=3.0)
        assert events[0].kind == GENA and "lost" in events[0].detail
    finally:
        sub.stop()


def test_no_wan_connection_service_means_not_started(igd, monkeypatch):
    import natlink.service.gena as gena

    monkeypatch.setattr(gena, "event_url", lambda desc, url: None)
    sub = GenaSubscriber(lambda e: None, igd.root_url, "127.0.0.1")
    assert not sub.start()
    sub.stop()


def test_unreachable_router_means_not_started():
    sub = GenaSubscriber(lambda e: None, "http://127.0.0.1:9/rootDesc.xml", "127.0.0.1", timeout=0.5)
    assert not sub.start()
    sub.stop()
