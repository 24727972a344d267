"""IPv6 pinholes, the pure part: what the config asks for (Want), what natlink holds (Hole, state) and the plan
between them. No NAT66: a pinhole opens the internal port on the target's global address. docs/design/ipv6.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from natlink.portmap.pinhole_state import STATE_KEY, owned_records

if TYPE_CHECKING:
    from natlink.ipv6addr import Selection

LEASE_PERMANENT = 86400  # a pinhole cannot be permanent: lease 0 becomes a day, renewed like any other
ADD, RENEW, MOVE, DELETE = "add", "renew", "move", "delete"
MAPPER_LABEL = {"upnp": "UPnP", "pcp": "PCP"}  # a pinhole's mapper, as the output names it


@dataclass(frozen=True)
class Want:
    name: str
    protocol: str
    port: int  # the internal port: IPv6 has no port translation
    address: str
    lease: int
    external_port: int  # the IPv4 external port, only to say when it differs

    @property
    def label(self) -> str:
        return f"{self.protocol.upper()} [{self.address}]:{self.port}"


@dataclass(frozen=True)
class Hole:
    """A pinhole natlink opened (state)."""

    name: str
    protocol: str
    port: int
    address: str
    mapper: str  # "pcp" | "upnp" (the state record's key is "via")
    unique_id: int | None = None  # UPnP
    nonce: str | None = None  # PCP
    lease: int = 0
    at: float = 0.0  # when it was last opened or renewed (unix time)

    @property
    def label(self) -> str:
        return f"{self.protocol.upper()} [{self.address}]:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {("via" if k == "mapper" else k): v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hole:
        data = {("mapper" if k == "via" else k): v for k, v in data.items()}
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Step:
    action: str
    name: str
    want: Want | None = None
    have: Hole | None = None


def wants(cfg: Any, selection: Selection) -> list[Want]:
    """The pinholes the config asks for, at the selected address (or ``ipv6_host`` in its prefix)."""
    from natlink.ipv6addr import combine

    out = []
    if selection.address is None:
        return out
    for m in cfg.mappings:
        if not cfg.mapping_ipv6(m):
            continue
        address = combine(selection.address, selection.prefixlen, m.ipv6_host) if m.ipv6_host else selection.address
        out.append(Want(m.name, m.protocol, m.internal_port, address, m.lease or LEASE_PERMANENT, m.external_port))
    return out


def plan(want: list[Want], owned: dict[str, Hole], names: list[str] | None = None) -> list[Step]:
    """add what is missing, renew what is there (re-requesting is how a pinhole is verified), move a pinhole
    whose address or port changed (renumbering), delete natlink's own that the config no longer asks for."""
    steps = []
    for w in want:
        h = owned.get(w.name)
        if h is None:
            steps.append(Step(ADD, w.name, w))
        elif (h.address, h.port, h.protocol) == (w.address, w.port, w.protocol):
            steps.append(Step(RENEW, w.name, w, h))
        else:
            steps.append(Step(MOVE, w.name, w, h))
    wanted = {w.name for w in want}
    steps += [Step(DELETE, n, None, h) for n, h in owned.items() if n not in wanted and (names is None or n in names)]
    return steps


def port_notes(want: list[Want]) -> list[str]:
    return [f"{w.name}: IPv6 has no port translation: over IPv6 clients connect to port {w.port}, not "
            f"{w.external_port}" for w in want if w.external_port != w.port]


def load_owned(store: Any) -> dict[str, Hole]:
    """natlink's pinholes from the state (importable without the protocol code: `natlink status`, `ip`)."""
    return {name: Hole.from_json(h) for name, h in owned_records(store).items()}


def save_owned(store: Any, owned: dict[str, Hole]) -> None:
    store.save(STATE_KEY, {"pinholes": {n: h.to_json() for n, h in sorted(owned.items())}})
