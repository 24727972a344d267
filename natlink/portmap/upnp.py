"""UPnP IGD v1/v2: what natlink's two UPnP engines share (IgdActions: the table, verification, error
translation by upnp_errors), and the miniupnpc binding engine (UpnpClient).

natlink's own SOAP engine (natlink.portmap.upnp_igd) acts on the WAN connection service natlink chose among
all of an IGD's; the binding can only act on the first one of a description, so it is kept for descriptions
natlink's strict parser refuses (not well-formed, a DTD), which its lenient parser takes (docs/design/router.md).
"""

from __future__ import annotations

import logging
from typing import Any

from natlink.portmap.base import Granted, Mapping, MappingError, RouterUnavailable
from natlink.portmap.upnp_errors import ErrorContext, code_of, refusal

log = logging.getLogger(__name__)

MAX_ENTRIES = 1024  # guard against routers that never report the end of the table

# GetSpecificPortMappingEntry (714 NoSuchEntryInArray) / GetGenericPortMappingEntry (713 past the end): "none"
NO_ENTRY = (713, 714)


def _binding() -> Any:
    try:
        import miniupnpc
    except ImportError:
        raise RouterUnavailable("the miniupnpc Python module is not installed",
                                "pip install miniupnpc (or apt install python3-miniupnpc)") from None
    return miniupnpc


class Refused(Exception):
    """An engine's failure before translation: the UPnP code (negative: no usable answer, as miniupnpc counts)
    and the router's or library's text."""

    def __init__(self, code: int | None, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class IgdActions:
    """The UPnP client interface (PortMapper) over an engine's primitives; each primitive raises Refused."""

    mapper = "upnp"
    can_list = True
    epoch = None  # UPnP has no epoch; a reboot shows as missing entries in the table
    root_url: str
    self_ip: str | None
    timeout: float
    control_url: str | None
    service_type: str | None = None  # None: not known (the binding does not say); the listing tries IGD v2
    _list_v2: bool | None = None  # None: not tried yet; False: IGD v1 or the call failed

    # ------------------------------------------------------------------ engine primitives

    def _external_ip(self) -> str:
        raise NotImplementedError

    def _status(self) -> tuple[str | None, float | None]:
        raise NotImplementedError

    def _connection_type(self) -> str | None:
        raise NotImplementedError

    def _add(self, port: int, want: Mapping, lease: int) -> None:
        raise NotImplementedError

    def _add_any(self, want: Mapping, lease: int) -> int:
        raise NotImplementedError

    def _delete(self, m: Mapping) -> None:
        raise NotImplementedError

    def _specific(self, protocol: str, external_port: int) -> tuple[Any, ...] | None:
        """(internal host, internal port, description, enabled, lease), or None when there is no such entry."""
        raise NotImplementedError

    def _generic(self, index: int) -> tuple[Any, ...] | None:
        """(ext port, protocol, (internal host, internal port), description, enabled, remote host, lease), or
        None past the end of the table."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the interface

    def external_ip(self) -> str | None:
        try:
            ip = self._external_ip()
        except Refused as exc:
            if exc.code is not None and exc.code < 0:  # no answer (e.g. the HTTP port moved): not "no address"
                raise RouterUnavailable(f"the UPnP IGD at {self.root_url} did not answer ({exc.text})",
                                        "natlink discovers the router again") from None
            log.debug("GetExternalIPAddress failed: %s", exc.text)
            return None
        ip = (ip or "").strip()
        return ip if ip and ip != "0.0.0.0" else None  # both mean "not connected" (seen on several routers)

    def connection(self) -> dict[str, Any] | None:
        """The WAN connection as the IGD reports it (GetStatusInfo, GetConnectionTypeInfo), like `upnpc -l`:
        {"status": "Connected", "uptime": seconds, "type": "IP_Routed"}; None when the router does not say."""
        try:
            status, uptime = self._status()
        except Refused as exc:
            log.debug("GetStatusInfo failed: %s", exc.text)
            return None
        try:
            kind = self._connection_type() or None
        except Refused:
            kind = None
        return {"status": status or None, "uptime": uptime, "type": kind}

    @property
    def lists_in_one_call(self) -> bool:
        """Whether a table read is one call per protocol (IGD v2) rather than one per entry."""
        return self._list_v2 is not False

    def list(self) -> list[Mapping]:
        """The whole table: IGD v2 GetListOfPortMappings (one call per protocol) when the router has it, else
        GetGenericPortMappingEntry entry by entry (IGD v1; remembered for this client's lifetime)."""
        if self._list_v2 is not False and self.control_url:
            from natlink.portmap import upnp_list

            service = self.service_type or upnp_list.SERVICE_V2
            try:
                table = [m for proto in ("tcp", "udp") for m in upnp_list.fetch(self.control_url, proto,
                                                                                 timeout=self.timeout,
                                                                                 service=service)]
            except upnp_list.ListUnavailable as exc:
                log.debug("GetListOfPortMappings unavailable (%s); walking the table entry by entry", exc)
                self._list_v2 = False
            else:
                self._list_v2 = True
                return sorted(table, key=lambda m: (m.external_port, m.protocol))
        return self._walk()

    def _walk(self) -> list[Mapping]:
        out: list[Mapping] = []
        for i in range(MAX_ENTRIES):
            try:
                entry = self._generic(i)
            except Refused as exc:
                raise refusal(exc.code, exc.text, ErrorContext(action="list")) from None
            if entry is None:
                break
            try:
                ext, proto, (ihost, iport), desc, enabled, rhost, lease = entry
                out.append(Mapping(proto.lower(), int(ext), ihost, int(iport), desc or "", int(lease),
                                   str(enabled) in ("1", "true", "True"), rhost or ""))
            except (TypeError, ValueError):
                raise MappingError(None, f"entry {i} of the router's UPnP table is unreadable ({entry!r:.80})",
                                   "check the router's UPnP table; reboot it if it is corrupted",
                                   mapper="upnp") from None
        return out

    def get(self, protocol: str, external_port: int) -> Mapping | None:
        """GetSpecificPortMappingEntry: the entry now in the router's table, or None."""
        try:
            entry = self._specific(protocol, external_port)
        except Refused as exc:
            raise refusal(exc.code, exc.text, ErrorContext(action="get")) from None
        if entry is None:
            return None
        try:
            ihost, iport, desc, enabled, lease = entry
            return Mapping(protocol, external_port, ihost, int(iport), desc or "", int(lease),
                           str(enabled) not in ("0", "False", "false", ""))
        except (TypeError, ValueError):
            raise MappingError(None, f"the router's entry for {protocol.upper()} {external_port} is unreadable "
                                     f"({entry!r:.80})", "check the router's UPnP table; reboot it if it is "
                                                         "corrupted", mapper="upnp") from None

    def add(self, want: Mapping, lease: int, *, any_port: bool = False, nonce: str | None = None) -> Granted:
        port = want.external_port
        if not 0 < port < 65536:  # some routers take external port 0 as "every port"
            raise MappingError(None, f"external port {port} is not a port natlink asks for", "set external_port to "
                                     "1-65535", mapper="upnp")
        try:
            if any_port:
                # IGD v2 AddAnyPortMapping: the router picks a free port near the wanted one. The binding always
                # asks for lease 0 there, so set the real lease with a plain AddPortMapping afterwards.
                try:
                    port = int(self._add_any(want, lease))
                except Refused as exc:
                    if exc.code != 401:  # Invalid Action: an IGD v1 router
                        raise
                    port = want.external_port
            self._add(port, want, lease)
        except Refused as exc:
            err = refusal(exc.code, exc.text, ErrorContext("add", want, self.self_ip, lease, self._holder(want)))
            err.name = want.description
            raise err from None
        return Granted(port, lease)

    def _holder(self, want: Mapping) -> Mapping | None:
        try:
            return self.get(want.protocol, want.external_port)
        except Exception:
            return None

    def delete(self, m: Mapping, *, nonce: str | None = None) -> None:
        try:
            self._delete(m)
        except Refused as exc:
            err = refusal(exc.code, exc.text, ErrorContext("delete", m, self.self_ip))
            if err.code == 714:  # already gone: that is what we wanted
                return
            raise err from None


class UpnpClient(IgdActions):
    """The miniupnpc binding engine: the first WAN connection service of the description at ``root_url``."""

    def __init__(self, root_url: str, self_ip: str | None = None, timeout: float = 2.0) -> None:
        self.root_url = root_url
        self.self_ip = self_ip
        self.timeout = timeout
        self._list_v2 = None
        self._u = _binding().UPnP()
        try:
            self.control_url = self._u.selectigd(root_url)
        except Exception as exc:
            raise RouterUnavailable(f"no UPnP IGD at {root_url} ({exc})",
                                    "natlink rediscovers the router; check that UPnP is enabled") from None
        if not self.self_ip:
            self.self_ip = self._u.lanaddr or None

    def _do(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # the binding raises plain Exception("<strupnperror text>")
            raise Refused(code_of(str(exc)), str(exc)) from None

    def _external_ip(self) -> str:
        return self._do(self._u.externalipaddress)

    def _status(self) -> tuple[str | None, float | None]:
        status, uptime, _last_error = self._do(self._u.statusinfo)
        return status, float(uptime) if uptime is not None else None

    def _connection_type(self) -> str | None:
        return self._do(self._u.connectiontype)

    def _add(self, port: int, want: Mapping, lease: int) -> None:
        self._do(self._u.addportmapping, port, want.protocol.upper(), want.internal_ip, want.internal_port,
                 want.description, "", lease)

    def _add_any(self, want: Mapping, lease: int) -> int:
        return int(self._do(self._u.addanyportmapping, want.external_port, want.protocol.upper(), want.internal_ip,
                            want.internal_port, want.description, ""))

    def _delete(self, m: Mapping) -> None:
        self._do(self._u.deleteportmapping, m.external_port, m.protocol.upper(), m.remote_host or "")

    def _specific(self, protocol: str, external_port: int) -> tuple[Any, ...] | None:
        return self._u.getspecificportmapping(external_port, protocol.upper())  # None for any failure

    def _generic(self, index: int) -> tuple[Any, ...] | None:
        return self._do(self._u.getgenericportmapping, index)

    def close(self) -> None:
        self._u = None
