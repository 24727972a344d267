"""PURE: may this protocol map for that host, and did the router map where it was asked to?

NAT-PMP requests carry no internal address (the router maps to the sender), so a mapping for another LAN
host can never go over it; whatever the router reports back as the internal side is compared with the wish.
"""

from __future__ import annotations

from natlink.portmap.base import MAPPER_LABELS, Granted, Mapping, MappingError
from natlink.portmap.results import OTHER_PORT_FIX

def other_host_refusal(mapper: str, want: Mapping, self_ip: str | None) -> MappingError | None:
    """The error for a mapping to another host over a protocol that can only map to the asking host."""
    if mapper != "natpmp" or not self_ip or want.internal_ip == self_ip:
        return None
    return MappingError(None, f"{want.protocol.upper()} {want.external_port} → {want.internal_ip}:"
                              f"{want.internal_port} is for another host, and NAT-PMP maps only to the host that "
                              f"asks ({self_ip}); nothing was sent",
                        f"run natlink on {want.internal_ip}, or enable UPnP IGD (or PCP with third-party "
                        "mappings) on the router", mapper="natpmp")


def other_port_refusal(mapper: str, want: Mapping, offered: int, *, any_port: bool) -> MappingError | None:
    """The error for a NAT-PMP/PCP gateway that offered another external port than asked, unless any port does.

    The client gives the offered port back before raising it, rather than keep a mapping nobody configured."""
    if offered == want.external_port or any_port:
        return None
    return MappingError(None, f"the gateway offered external port {offered} instead of {want.external_port} "
                              "(taken by another host or mapping)", OTHER_PORT_FIX, mapper=mapper)


def granted_mismatch(mapper: str, want: Mapping, granted: Granted) -> MappingError | None:
    """A failure when the router reports another internal host or port than the one asked for."""
    wrong = []
    if granted.internal_ip is not None and granted.internal_ip != want.internal_ip:
        wrong.append(f"host {granted.internal_ip}")
    if granted.internal_port is not None and granted.internal_port != want.internal_port:
        wrong.append(f"port {granted.internal_port}")
    if not wrong:
        return None
    return MappingError(None, f"the router answered {MAPPER_LABELS.get(mapper, mapper)} {want.protocol.upper()} "
                              f"{want.external_port} with internal {' and '.join(wrong)}, not "
                              f"{want.internal_ip}:{want.internal_port}",
                        "check the router's port-forwarding page for an entry that overrides it; run natlink on "
                        "the host the mapping is for", mapper=mapper)
