"""What every protocol client shares: the Forward and Mapping records, the PortMapper interface and
MappingError."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from natlink.errors import NatlinkError

OWNER_PREFIX = "natlink:"
MAPPER_LABELS = {"upnp": "UPnP IGD", "natpmp": "NAT-PMP", "pcp": "PCP"}  # how the output names each mapper


@dataclass(frozen=True)
class Forward:
    """What a port mapping forwards: ``protocol`` traffic to the router's ``external_port`` goes to
    ``internal_ip:internal_port``. Mapping (a router's entry), plan.Desired (one natlink wants) and plan.Owned
    (natlink's record of one it made) add what each knows besides: a lease of its own meaning, a description,
    bookkeeping."""

    protocol: str  # "tcp" | "udp"
    external_port: int
    internal_ip: str
    internal_port: int

    @property
    def key(self) -> tuple[str, int]:
        """A router's table holds one entry per protocol and external port."""
        return (self.protocol, self.external_port)

    def same_target(self, other: Forward) -> bool:
        """Both forward the same protocol to the same host and port (whatever the external port)."""
        return (self.protocol, self.internal_ip, self.internal_port) == (other.protocol, other.internal_ip,
                                                                          other.internal_port)


@dataclass(frozen=True)
class Mapping(Forward):
    """One entry of a router's table (or one we want there).

    ``lease`` is the lifetime left in seconds as the router reports it; 0 = permanent; None = unknown.
    """

    description: str = ""
    lease: int | None = None
    enabled: bool = True
    remote_host: str = ""

    @property
    def owner_name(self) -> str | None:
        """The natlink mapping name from a "natlink:<name> ..." description, else None."""
        return owner_name(self.description)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def owner_name(description: str | None) -> str | None:
    if not description or not description.startswith(OWNER_PREFIX):
        return None
    name = description[len(OWNER_PREFIX):].split(" ", 1)[0]
    return name or None


def owner_description(name: str, extra: str = "") -> str:
    """The description natlink writes: "natlink:<name>" + the user's text (UPnP allows ~80 chars)."""
    return f"{OWNER_PREFIX}{name} {extra}".strip()[:79]


@dataclass(frozen=True)
class Granted:
    """What the router gave for an add request."""

    external_port: int
    lease: int  # seconds granted; 0 = permanent
    external_ip: str | None = None
    nonce: str | None = None  # PCP: needed to renew or delete the same mapping later
    internal_ip: str | None = None  # where the router says it maps to (None: the protocol does not say)
    internal_port: int | None = None


@dataclass(frozen=True)
class AddRequest:
    """One add() call, for clients that pipeline several (NAT-PMP/PCP ``add_many``)."""

    want: Mapping
    lease: int
    any_port: bool = False
    nonce: str | None = None


def outcome(result: Granted | NatlinkError) -> Granted:
    """One ``add_many`` outcome as add() gives it: the grant, or its error raised."""
    if isinstance(result, NatlinkError):
        raise result
    return result


class MappingError(NatlinkError):
    """A router refused a request; ``code`` is the protocol's code (e.g. UPnP 718, NAT-PMP 2, PCP 2)."""

    def __init__(self, code: int | None, cause: str, fix: str, *, mapper: str = "", name: str = "") -> None:
        self.code = code
        self.cause = cause
        self.fix = fix
        self.mapper = mapper  # upnp | natpmp | pcp
        self.name = name
        label = f"{mapper.upper() if mapper != 'natpmp' else 'NAT-PMP'} error {code}: " if code is not None else ""
        super().__init__(f"{label}{cause}", fix)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "protocol": self.mapper, "cause": self.cause, "fix": self.fix}


class RouterUnavailable(NatlinkError):
    """The router did not answer (down, absent, protocol switched off)."""


class NoRouter(RouterUnavailable):
    """Discovery heard no usable answer over any configured protocol (the fix is the router's settings).
    ``reasons``: what each mapper asked did (mapper -> a phrase), for callers that list them their own way."""

    def __init__(self, message: str, hint: str = "", *, reasons: dict[str, str] | None = None) -> None:
        super().__init__(message, hint)
        self.reasons = dict(reasons or {})


class PortMapper(Protocol):
    """One protocol client bound to one router. Implementations: UpnpClient, NatPmpClient, PcpClient."""

    mapper: str  # "upnp" | "natpmp" | "pcp"
    can_list: bool  # UPnP can read the whole table; NAT-PMP/PCP cannot

    @property
    def epoch(self) -> int | None: ...

    def external_ip(self) -> str | None: ...

    def list(self) -> list[Mapping] | None: ...

    def add(self, want: Mapping, lease: int, *, any_port: bool = False, nonce: str | None = None) -> Granted: ...

    def delete(self, m: Mapping, *, nonce: str | None = None) -> None: ...

    def close(self) -> None: ...


@dataclass
class MapperAnswer:
    """Whether one mapping protocol (upnp / natpmp / pcp) answered while natlink opened the router, and how
    (for `natlink doctor` and the output)."""

    mapper: str
    ok: bool
    detail: str
    elapsed: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.mapper, "ok": self.ok, "detail": self.detail, "elapsed": round(self.elapsed, 4),
                **self.extra}
