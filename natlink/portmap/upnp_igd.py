"""Open an IGD on the WAN connection service natlink chose, and act on it with natlink's own SOAP.

``open_igd`` reads the root description(s) (one GET each: what miniupnpc's selectigd cost before), lists every
WAN*Connection service (igd_services, pure) and chooses: the only one as it is (no extra round trip, the
miniupnpd case); the one chosen last time (state "router", key "wan_service") while the description still
has it; else every candidate is asked GetStatusInfo and GetExternalIPAddress at once and ranked. A description
natlink's strict parser refuses goes to the miniupnpc binding instead (its lenient parser, its first service).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from natlink.portmap import igd_services, upnp_soap
from natlink.portmap.base import Mapping, RouterUnavailable
from natlink.portmap.igd_services import Choice, Observed, WanService
from natlink.portmap.upnp import NO_ENTRY, IgdActions, Refused, UpnpClient
from natlink.portmap.upnp_soap import Description, SoapFailed, SoapFault
from natlink.portmap.xmlsafe import RouterXmlError

log = logging.getLogger(__name__)


class IgdClient(IgdActions):
    """One WAN connection service (``choice``) of an IGD, over natlink's SOAP; ``services``: all it offers."""

    def __init__(self, choice: Choice, services: Sequence[WanService], self_ip: str | None,
                 timeout: float = 2.0) -> None:
        self.services = list(services)
        self.self_ip = self_ip
        self.timeout = timeout
        self.on_change: Callable[[], None] | None = None  # told when recheck() moved to another service
        self._use(choice)

    def _use(self, choice: Choice) -> None:
        s = choice.service
        self.choice = choice
        self.root_url = s.description_url
        self.control_url = s.control_url
        self.service_type = s.service_type
        # GetListOfPortMappings exists in WANIPConnection:2 only: on the others walk the table straight away
        self._list_v2 = None if s.kind == "WANIPConnection" and s.version >= 2 else False

    def recheck(self, why: str) -> None:
        """Rank every service again (the cached choice failed) and move to the best one."""
        choice = igd_services.choose(observe(self.services, self.timeout))
        moved = choice.service != self.choice.service
        if moved:
            log.warning("UPnP: %s; now using %s", why, choice.reason)
        self._use(choice)
        if moved and self.on_change is not None:
            self.on_change()

    def external_ip(self) -> str | None:
        ip = super().external_ip()
        if ip is None and self.choice.source == "cache" and len(self.services) > 1:
            self.recheck(f"the cached {self.choice.service.label} reports no external address")
            ip = super().external_ip()
        return ip

    def to_json(self) -> dict[str, Any]:
        return self.choice.to_json()

    # ------------------------------------------------------------------ primitives (IgdActions)

    def _call(self, action: str, args: Sequence[tuple[str, str | int]] = ()) -> dict[str, str]:
        assert self.control_url is not None and self.service_type is not None
        try:
            return upnp_soap.call(self.control_url, self.service_type, action, args, timeout=self.timeout)
        except SoapFault as exc:
            raise Refused(exc.code, exc.description or f"UPnP error {exc.code}") from None
        except SoapFailed as exc:
            raise Refused(exc.code, exc.message) from None

    def _external_ip(self) -> str:
        return self._call("GetExternalIPAddress").get("NewExternalIPAddress", "")

    def _status(self) -> tuple[str | None, float | None]:
        out = self._call("GetStatusInfo")
        uptime = out.get("NewUptime", "")
        return out.get("NewConnectionStatus") or None, float(uptime) if uptime.isdigit() else None

    def _connection_type(self) -> str | None:
        return self._call("GetConnectionTypeInfo").get("NewConnectionType") or None

    @staticmethod
    def _mapping_args(port: int, want: Mapping, lease: int) -> list[tuple[str, str | int]]:
        return [("NewRemoteHost", ""), ("NewExternalPort", port), ("NewProtocol", want.protocol.upper()),
                ("NewInternalPort", want.internal_port), ("NewInternalClient", want.internal_ip),
                ("NewEnabled", 1), ("NewPortMappingDescription", want.description), ("NewLeaseDuration", lease)]

    def _add(self, port: int, want: Mapping, lease: int) -> None:
        self._call("AddPortMapping", self._mapping_args(port, want, lease))

    def _add_any(self, want: Mapping, lease: int) -> int:
        out = self._call("AddAnyPortMapping", self._mapping_args(want.external_port, want, lease))
        try:
            return int(out.get("NewReservedPort", ""))
        except ValueError:
            raise Refused(upnp_soap.INVALID_RESPONSE, f"AddAnyPortMapping answered no port ({out})") from None

    def _delete(self, m: Mapping) -> None:
        self._call("DeletePortMapping", [("NewRemoteHost", m.remote_host or ""), ("NewExternalPort", m.external_port),
                                         ("NewProtocol", m.protocol.upper())])

    def _specific(self, protocol: str, external_port: int) -> tuple[Any, ...] | None:
        try:
            out = self._call("GetSpecificPortMappingEntry", [("NewRemoteHost", ""), ("NewExternalPort", external_port),
                                                             ("NewProtocol", protocol.upper())])
        except Refused as exc:
            if exc.code in NO_ENTRY:
                return None
            raise
        return (out.get("NewInternalClient", ""), out.get("NewInternalPort", ""),
                out.get("NewPortMappingDescription", ""), out.get("NewEnabled", "1"), out.get("NewLeaseDuration") or 0)

    def _generic(self, index: int) -> tuple[Any, ...] | None:
        try:
            out = self._call("GetGenericPortMappingEntry", [("NewPortMappingIndex", index)])
        except Refused as exc:
            if exc.code is not None and exc.code < 0:
                raise
            return None  # past the end: 713 by the spec; routers also answer 714, 402 or 501 there
        return (out.get("NewExternalPort", ""), out.get("NewProtocol", ""),
                (out.get("NewInternalClient", ""), out.get("NewInternalPort", "")),
                out.get("NewPortMappingDescription", ""), out.get("NewEnabled", "1"), out.get("NewRemoteHost", ""),
                out.get("NewLeaseDuration") or 0)

    def close(self) -> None:
        pass  # one connection per call: nothing held open


# ---------------------------------------------------------------------------------------------- choosing


def observe_one(service: WanService, timeout: float) -> Observed:
    """GetStatusInfo and GetExternalIPAddress of one service (either may be refused; silence is a problem)."""
    answers: dict[str, str] = {}
    for action, field in (("GetStatusInfo", "NewConnectionStatus"), ("GetExternalIPAddress", "NewExternalIPAddress")):
        try:
            answers[field] = upnp_soap.call(service.control_url, service.service_type, action,
                                            timeout=timeout).get(field, "")
        except SoapFault as exc:
            log.debug("UPnP: %s %s refused (%s)", service.label, action, exc)
        except SoapFailed as exc:
            return Observed(service, answers.get("NewConnectionStatus"), problem=f"did not answer ({exc.message})")
    return Observed(service, answers.get("NewConnectionStatus") or None, answers.get("NewExternalIPAddress"))


def observe(services: Sequence[WanService], timeout: float) -> list[Observed]:
    """Every service asked at once: one slow service costs one timeout, not one each."""
    results: list[Observed | None] = [None] * len(services)

    def ask(i: int) -> None:
        results[i] = observe_one(services[i], timeout)

    threads = [threading.Thread(target=ask, args=(i,), daemon=True, name="natlink-igd-status")
               for i in range(len(services))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout * 2 + 1)
    return [r if r is not None else Observed(s, problem="did not answer in time") for r, s in zip(results, services)]


def select(services: Sequence[WanService], cached: Any = None, timeout: float = 2.0) -> Choice:
    if len(services) == 1:
        return igd_services.only(services[0])
    return igd_services.cached(services, cached) or igd_services.choose(observe(services, timeout))


def open_igd(urls: Sequence[str], self_ip: str | None = None, timeout: float = 2.0, *, gateway: str | None = None,
             cached: Any = None, fetched: Description | None = None) -> IgdActions:
    """A client on the chosen WAN connection service of the IGD(s) at ``urls``; RouterUnavailable when none
    can be read or none has a WAN connection service. ``fetched``: a description already read (not again)."""
    urls = list(dict.fromkeys([fetched.url, *urls] if fetched is not None else urls))
    services: list[WanService] = []
    failures: list[str] = []
    unreadable: list[str] = []
    local: str | None = None
    for url in urls:
        try:
            body, seen_as = (fetched.body, fetched.local) if fetched is not None and fetched.url == url \
                else upnp_soap.get(url, timeout)
            services += igd_services.parse_description(body, url, gateway)
        except SoapFailed as exc:
            failures.append(exc.message)
            continue
        except RouterXmlError as exc:
            log.info("UPnP: the description at %s is not one natlink reads (%s); trying miniupnpc's parser", url, exc)
            unreadable.append(url)
            continue
        local = local or seen_as
    services = igd_services.unique(services)
    if not services:
        if unreadable:
            return UpnpClient(unreadable[0], self_ip, timeout)
        if failures:
            raise RouterUnavailable(f"no UPnP IGD at {', '.join(urls)} ({'; '.join(failures)})",
                                    "natlink rediscovers the router; check that UPnP is enabled")
        raise RouterUnavailable(f"the UPnP IGD at {', '.join(urls)} has no WAN connection service "
                                "(WANIPConnection / WANPPPConnection)", "check the router's UPnP settings")
    choice = select(services, cached, timeout)
    (log.info if len(services) > 1 else log.debug)("UPnP: using %s at %s — %s", choice.service.label,
                                                   choice.service.control_url, choice.reason)
    return IgdClient(choice, services, self_ip or local, timeout)
