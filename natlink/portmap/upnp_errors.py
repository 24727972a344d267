"""UPnP IGD error codes: the miniupnpc binding raises ``Exception("ConflictInMappingEntry")`` with only the
text of strupnperror(); turn that text back into the code, and the code into a plain cause and fix.

Pure: no I/O. The explanations depend on the request (which port, which internal host, our own address).
"""

from __future__ import annotations

from dataclasses import dataclass

from natlink.portmap.base import Mapping, MappingError

# strupnperror() text (miniupnpc upnperrors.c) -> UPnP code. Negative codes are miniupnpc's own.
TEXT_TO_CODE: dict[str, int] = {
    "Invalid Action": 401, "Invalid Args": 402, "Action Failed": 501, "Argument Value Invalid": 600,
    "Argument Value Out of Range": 601, "Optional Action Not Implemented": 602, "Out of Memory": 603,
    "Human Intervention Required": 604, "String Argument Too Long": 605, "Action not authorized": 606,
    "PinholeSpaceExhausted": 701, "FirewallDisabled": 702, "InboundPinholeNotAllowed": 703, "NoSuchEntry": 704,
    "ProtocolNotSupported": 705, "InternalPortWildcardingNotAllowed": 706, "ProtocolWildcardingNotAllowed": 707,
    "InvalidLayer2Address": 708, "NoPacketSent": 709, "SpecifiedArrayIndexInvalid": 713,
    "NoSuchEntryInArray": 714, "WildCardNotPermittedInSrcIP": 715, "WildCardNotPermittedInExtPort": 716,
    "ConflictInMappingEntry": 718, "SamePortValuesRequired": 724, "OnlyPermanentLeasesSupported": 725,
    "RemoteHostOnlySupportsWildcard": 726, "ExternalPortOnlySupportsWildcard": 727,
    # Newer miniupnpc versions name these; older ones say "UnknownError" (see below).
    "NoPortMapsAvailable": 728, "ConflictWithOtherMechanisms": 729, "WildCardNotPermittedInIntPort": 732,
    "Miniupnpc Unknown Error": -1, "Miniupnpc Invalid Arguments": -2, "Miniupnpc Invalid response": -3,
    "Miniupnpc HTTP error": -4, "Miniupnpc Socket error": -101, "Miniupnpc Memory allocation error": -102,
}
CODE_NAMES = {code: text for text, code in TEXT_TO_CODE.items()}


@dataclass(frozen=True)
class ErrorContext:
    """What natlink was doing when the router refused."""

    action: str = "add"  # add | delete | list | external-ip
    want: Mapping | None = None
    self_ip: str | None = None  # this host's LAN address (what the router sees as the requester)
    lease: int | None = None
    holder: Mapping | None = None  # the entry currently using the external port, if known


def code_of(message: str) -> int | None:
    """The UPnP code behind a binding exception text; None when the text is not one strupnperror() makes."""
    text = message.strip()
    if text in TEXT_TO_CODE:
        return TEXT_TO_CODE[text]
    if text.isdigit():  # some builds print the bare code
        return int(text)
    return None


def translate(message: str, ctx: ErrorContext | None = None) -> MappingError:
    """Binding exception text -> MappingError(code, cause, fix), worded for this request."""
    ctx = ctx or ErrorContext()
    code = code_of(message)
    if code is None and message.strip() == "UnknownError":
        # strupnperror() in miniupnpc <= 2.3 has no text for 728/729/730+: the code is lost.
        return MappingError(None, "the router refused with an error code miniupnpc cannot name "
                                  "(728 no port maps available, 729 conflict with other mechanisms, or newer)",
                            "free some mappings on the router (natlink mappings), or try NAT-PMP/PCP "
                            "(router.protocols = [\"natpmp\", \"pcp\"])", mapper="upnp")
    cause, fix = explain(code, ctx, message)
    return MappingError(code, cause, fix, mapper="upnp")


def refusal(code: int | None, text: str, ctx: ErrorContext | None = None) -> MappingError:
    """A UPnP code (natlink's SOAP engine reads it from the fault) or, without one, the binding's text ->
    MappingError, worded for this request."""
    if code is None:
        return translate(text, ctx)
    cause, fix = explain(code, ctx or ErrorContext(), text)
    return MappingError(code, cause, fix, mapper="upnp")


def _where(ctx: ErrorContext) -> tuple[str, str, str]:
    w = ctx.want
    if w is None:
        return "the port", "the port", "this host"
    return (f"external {w.protocol.upper()} port {w.external_port}", f"{w.internal_ip}:{w.internal_port}",
            w.internal_ip)


def explain(code: int | None, ctx: ErrorContext, message: str = "") -> tuple[str, str]:
    """(cause, fix) in plain words for a UPnP code."""
    port, target, host = _where(ctx)
    other_host = ctx.want is not None and ctx.self_ip is not None and ctx.want.internal_ip != ctx.self_ip
    holder = ctx.holder
    if code == 718:
        if other_host:
            return (f"the router only lets a host map ports to itself (secure mode): {port} → {target} was asked "
                    f"for by {ctx.self_ip}",
                    f"run natlink on {host}, or free the port")
        who = (f" by {holder.internal_ip}:{holder.internal_port} ({holder.description or 'no description'})"
               if holder else " by another host or client")
        return (f"{port} is already mapped{who}",
                "free the port on the router, choose another external_port, or set allow_other_port = true")
    if code == 606:
        if ctx.action == "add" and ctx.want is not None:
            extra = " (routers usually refuse ports below 1024)" if ctx.want.external_port < 1024 else ""
            if other_host:
                return (f"the router does not allow {ctx.self_ip} to map {port} → {target}{extra}; in secure mode a "
                        "host may only map ports to itself",
                        f"run natlink on {host}, or use a high external_port and allow it in the router's UPnP settings")
            return (f"the router's UPnP policy does not allow mapping {port}{extra}",
                    "use a high external_port (e.g. 3390, 8443), or allow the port in the router's UPnP settings")
        return ("the router does not allow this UPnP action", "allow UPnP changes in the router's settings")
    if code == 501:
        if ctx.action == "add":
            return (f"the router could not add {port} (ActionFailed): its mapping table may be full, or it is "
                    "not connected (miniupnpd answers this for a private/CGNAT WAN address)",
                    "run `natlink mappings` and remove unused entries; run `natlink ip` to check the WAN address")
        return ("the router could not perform the action; miniupnpd answers this when its WAN address is "
                "private/CGNAT or it is not connected",
                "run `natlink ip` to check the WAN address; if it is public, restart the router's UPnP service")
    if code == 402:
        return ("the router rejected the request's arguments (some routers say this for a lease they do not accept)",
                "natlink retries with a permanent lease; if this persists, set lease = 0 in [router]")
    if code == 714:
        return (f"{port} is not in the router's table (already removed, expired, or the router rebooted)",
                "nothing to do; `natlink map` re-creates configured mappings")
    if code == 715:
        return ("the router does not accept a wildcard remote host", "the router needs a specific remote host; "
                "use NAT-PMP/PCP (router.protocols) if it offers them")
    if code == 716:
        return ("the router does not accept a wildcard external port", "set a specific external_port")
    if code == 724:
        return (f"the router only maps an external port to the same internal port ({port} → {target})",
                "set internal_port equal to external_port (and run the service on that port)")
    if code == 725:
        return ("the router only accepts permanent leases", "natlink retries with lease 0 and keeps track of the "
                "entry itself; set lease = 0 in [router] to skip the retry")
    if code == 726:
        return ("the router only accepts a wildcard remote host", "report this as a natlink bug: it always sends one")
    if code == 727:
        return ("the router only accepts a wildcard external port", "set allow_other_port = true so the router "
                "may pick the port")
    if code == 728:
        return ("the router's port mapping table is full", "remove unused mappings on the router "
                "(see `natlink mappings`), or reboot it")
    if code == 729:
        return (f"{port} is in use by another mechanism on the router (port forwarding rule, NAT-PMP/PCP, "
                "the router's own service)", "choose another external_port, or set allow_other_port = true")
    if code == 704:
        return (f"{port} is not in the router's table", "nothing to do")
    if code == 605:
        return ("the mapping description is too long for the router", "shorten the mapping's description")
    if code == 401:
        return ("the router does not implement this UPnP action", "use NAT-PMP/PCP if the router offers them "
                "(router.protocols)")
    if code is not None and code < 0:
        return (f"UPnP communication with the router failed ({message or CODE_NAMES.get(code, code)})",
                "check that the router is up and UPnP is enabled; natlink rediscovers the router on the next run")
    name = CODE_NAMES.get(code or 0, message or "unknown")
    return (f"the router refused: {name}", "see the router's UPnP settings and log")
