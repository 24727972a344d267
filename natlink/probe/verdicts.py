"""Pure decisions: what one probe observed -> a verdict and the one sentence that names the broken link.

No sockets here. The prober gathers an Observation per (target, family); `decide` turns it into a
verdict and a diagnosis; `cross_check` then compares targets with each other (a timeout on one port
while another port works points at the ISP, not at the mapping).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from natlink.isp_ports import suggest_port


class Verdict(str, Enum):
    VERIFIED = "verified"  # connected from outside and the answer proved it reached this host
    OPEN = "open"  # TCP handshake from outside completed; identity not proven
    REFUSED = "refused"  # RST: nothing forwards the port, or nothing listens behind it
    TIMEOUT = "timeout"  # no answer: ISP block, firewall, silently dropping router
    UNREACHABLE = "unreachable"  # ICMP/route error, or a checker that cannot tell refused from timeout
    CHECKER_ERROR = "checker-error"  # the outside checker failed: says nothing about the port
    CGNAT = "cgnat"  # no outside path can exist through this router


OK_VERDICTS = frozenset({Verdict.VERIFIED, Verdict.OPEN})


class Inside(str, Enum):
    """What is behind the internal address, as seen from this host before the outside connect."""

    SELF = "natlink"  # the port was free: natlink listened there itself and answers a nonce
    SERVICE = "service"  # something already listens there (the service)
    NOTHING = "nothing"  # a connect from here was refused: nothing listens
    UNKNOWN = "unknown"  # not checked (a bare host:port target, or the internal host did not answer)


@dataclass(frozen=True)
class Observation:
    """Everything measured for one target in one IP family."""

    name: str
    via: str  # reflector | echoip | hairpin
    protocol: str  # tcp | udp
    family: str  # ipv4 | ipv6
    external_port: int
    public_address: str | None = None  # the address the outside dialled (or the hairpin target)
    internal: str | None = None  # "10.0.1.201:3389" when known
    inside: Inside = Inside.UNKNOWN
    outcome: str = "error"  # open | refused | timeout | unreachable | error | closed (echoip: not reachable)
    error: str = ""  # checker error or ICMP detail
    nonce_seen: bool = False  # the outside read back natlink's nonce
    greeting_inside: bytes | None = None  # what the service says first, read from here
    greeting_outside: bytes | None = None  # what the outside read after connecting
    listener_hits: int = 0  # connections natlink's own listener accepted from non-local peers
    wan_problem: str | None = None  # a sentence: the router's WAN address cannot be reached (CGNAT ...)
    double_nat: str | None = None  # a sentence: another NAT is in front of the router
    router_forwards: bool | None = None  # the router's table has this mapping (None: not known)
    router_forwards_to: str | None = None  # "ip:port" the router's entry for this port points to, when elsewhere
    name_mismatch: str | None = None  # "rdp.example resolves to 1.2.3.4, the outside saw you as 5.6.7.8"

    @property
    def external(self) -> str:
        if not self.public_address:
            return f"port {self.external_port}"
        host = f"[{self.public_address}]" if ":" in self.public_address else self.public_address
        return f"{host}:{self.external_port}"


@dataclass(frozen=True)
class Diagnosis:
    """One observation's verdict and the sentence that explains it (before targets are compared)."""

    verdict: Verdict
    detail: str  # one sentence: "<verdict>: <cause> — <fix>"
    identity: str = "unproven"  # nonce | greeting | mismatch | other-host | unproven


def decide(obs: Observation) -> Diagnosis:
    """The verdict and diagnosis for one observation (without looking at other targets)."""
    d = _decide(obs)
    stale = obs.router_forwards_to and obs.via != "hairpin" and d.verdict is not Verdict.CGNAT
    if stale and d.verdict is not Verdict.CHECKER_ERROR and d.identity not in ("nonce", "greeting", "listener"):
        return replace(d, detail=(f"{d.verdict.value}: the router forwards {obs.external_port} to "
                                  f"{obs.router_forwards_to}, not to {obs.internal} (a stale mapping to another "
                                  "machine?) — delete it and run `natlink map`"))
    return d


def _decide(obs: Observation) -> Diagnosis:
    if obs.wan_problem and obs.family == "ipv4" and obs.via != "hairpin":
        return Diagnosis(Verdict.CGNAT, f"cgnat: {obs.wan_problem}")
    if obs.via == "hairpin":
        return _hairpin(obs)
    if obs.outcome == "error":
        return Diagnosis(Verdict.CHECKER_ERROR,
                         f"checker-error: {obs.error or 'the outside checker failed'} — this says nothing about "
                         f"{obs.external}; fix the checker or try another one")
    if obs.outcome == "open":
        return _open(obs)
    if obs.outcome == "closed":  # echoip: it could not connect, without saying how it failed
        if obs.listener_hits:
            return Diagnosis(Verdict.CHECKER_ERROR,
                             f"checker-error: the checker said {obs.external} is closed, yet natlink's listener on "
                             f"{obs.internal} accepted a connection from outside — the checker is unreliable")
        return Diagnosis(Verdict.UNREACHABLE,
                         f"unreachable: the checker could not connect to {obs.external} (it does not say whether it "
                         f"was refused or timed out) — {_closed_fix(obs)}")
    if obs.outcome == "refused":
        return Diagnosis(Verdict.REFUSED, _refused(obs))
    if obs.outcome == "timeout":
        return Diagnosis(Verdict.TIMEOUT, _timeout(obs))
    if obs.outcome == "unreachable":
        why = f" ({obs.error})" if obs.error else ""
        return Diagnosis(Verdict.UNREACHABLE,
                         f"unreachable: the outside got a network error connecting to {obs.external}{why} — the "
                         "address is not routed to your router; check the public address and the ISP link")
    return Diagnosis(Verdict.CHECKER_ERROR, f"checker-error: unknown outcome {obs.outcome!r}")


def _open(obs: Observation) -> Diagnosis:
    suffix = f"; note: {obs.name_mismatch}" if obs.name_mismatch else ""
    if obs.nonce_seen:
        return Diagnosis(Verdict.VERIFIED,
                         f"verified: a connect from outside to {obs.external} reached natlink's own listener on "
                         f"{obs.internal} (nonce read back) — the path works; start the service on that port"
                         + suffix, "nonce")
    if obs.inside is Inside.SELF:
        if obs.listener_hits:  # our listener accepted it but the bytes did not come back (echoip never reads)
            return Diagnosis(Verdict.VERIFIED,
                             f"verified: natlink's own listener on {obs.internal} accepted the connect from outside "
                             f"to {obs.external}" + suffix, "listener")
        return Diagnosis(Verdict.OPEN,
                         f"open: something answered on {obs.external}, but not this host (natlink listened on "
                         f"{obs.internal} and saw nothing) — the router forwards {obs.external_port} elsewhere, "
                         "e.g. a stale mapping to an old machine; delete it and run `natlink map`" + suffix,
                         "other-host")
    inside, outside = obs.greeting_inside, obs.greeting_outside
    if inside:
        if outside == inside:
            return Diagnosis(Verdict.VERIFIED,
                             f"verified: what {obs.external} sends first, read from outside, matches what the service "
                             f"on {obs.internal} sends" + suffix, "greeting")
        return Diagnosis(Verdict.OPEN,
                         f"open: {obs.external} answers from outside, but what it sends first is not what the "
                         f"service on {obs.internal} sends ({_show(outside)} vs {_show(inside)}) — the router may forward {obs.external_port} to "
                         "another machine; check the mapping's internal address" + suffix, "mismatch")
    if obs.protocol == "udp":
        return Diagnosis(Verdict.OPEN,
                         f"open: a UDP datagram from outside to {obs.external} was answered (which machine answered "
                         "is not proven)" + suffix)
    return Diagnosis(Verdict.OPEN,
                     f"open: a TCP connect from outside to {obs.external} completed (the service does not speak "
                     "first, so which machine answered is not proven)" + suffix)


def _refused(obs: Observation) -> str:
    port, target = obs.external_port, obs.internal
    if obs.inside is Inside.NOTHING:
        if obs.router_forwards:
            return f"refused: the router forwards {port} but nothing listens on {target} — start the service"
        if obs.router_forwards is False:
            return (f"refused: nothing listens on {target} and the router has no mapping for {port} — start the "
                    "service and run `natlink map`")
        return (f"refused: nothing listens on {target} — start the service (and check that the router forwards "
                f"{port} to it)")
    if obs.inside in (Inside.SELF, Inside.SERVICE):
        who = "natlink listened" if obs.inside is Inside.SELF else "the service listens"
        if obs.router_forwards:
            return (f"refused: the router has a mapping for {port} and {who} on {target}, yet the outside got "
                    f"{_reset(obs)} — a firewall on this host or the router rejects it; check both")
        return (f"refused: {who} on {target}, but {obs.external} answers the outside with {_reset(obs)} — the "
                f"router does not forward {port} here (no mapping, or it points to another address); run `natlink map`")
    if obs.router_forwards is False:
        return (f"refused: the router has no mapping for {port}, so {obs.external} answers the outside with "
                f"{_reset(obs)} — add a [[mapping]] for {port} and run `natlink map`")
    if obs.router_forwards:
        return (f"refused: the router forwards {port}, but nothing accepts the connection behind it — start the "
                "service on the mapping's internal address")
    return (f"refused: {obs.external} answered the outside with {_reset(obs)} — the router has no mapping for "
            f"{port}, or nothing listens behind it; run `natlink map` and start the service")


def _timeout(obs: Observation) -> str:
    port = obs.external_port
    if obs.protocol == "udp":
        return (f"timeout: nothing answered a UDP datagram to {obs.external} — over UDP silence cannot tell "
                "filtered from closed: the port may be blocked (ISP, firewall), unmapped on a router that drops "
                f"silently, or served by something that does not reply; check the mapping for {port}")
    front = f" {obs.double_nat}." if obs.double_nat else ""
    return (f"timeout: connects from outside to {obs.external} got no answer — an ISP block, a firewall in front "
            f"of the router, or a router that drops unmapped ports silently.{front} Check the mapping for {port}, "
            "then try a high external port (ISPs often block 80, 25, 445)")


def _reset(obs: Observation) -> str:
    """How a refusal reaches the outside: a TCP reset, or an ICMP port-unreachable for UDP."""
    return "an ICMP port-unreachable" if obs.protocol == "udp" else "a reset"


def _closed_fix(obs: Observation) -> str:
    if obs.inside is Inside.NOTHING:
        return f"nothing listens on {obs.internal}: start the service"
    return f"check the router's mapping for {obs.external_port}; ISPs often block low ports"


def _hairpin(obs: Observation) -> Diagnosis:
    note = "this is not proof of reachability from outside"
    if obs.outcome == "error":
        return Diagnosis(Verdict.CHECKER_ERROR, f"checker-error: hairpin check failed: {obs.error}")
    if obs.outcome == "open":
        if obs.nonce_seen:
            return Diagnosis(Verdict.VERIFIED,
                             f"verified (hairpin): connecting from inside to {obs.external} loops back to natlink on "
                             f"{obs.internal} — the router supports hairpin NAT; {note}", "nonce")
        same = obs.greeting_inside and obs.greeting_outside == obs.greeting_inside
        return Diagnosis(Verdict.VERIFIED if same else Verdict.OPEN,
                         f"{'verified' if same else 'open'} (hairpin): connecting from inside to {obs.external} "
                         f"reaches {'the service' if same else 'something'} — the router supports hairpin NAT; "
                         f"{note}",
                         "greeting" if same else "unproven")
    verdict = {"refused": Verdict.REFUSED, "timeout": Verdict.TIMEOUT}.get(obs.outcome, Verdict.UNREACHABLE)
    return Diagnosis(verdict,
                     f"{verdict.value} (hairpin): connecting from inside to {obs.external} does not loop back "
                     f"({obs.outcome}) — the router has no hairpin NAT (or no mapping); inside clients should use "
                     f"{obs.internal or 'the LAN address'} or split DNS; {note}")


def _show(data: bytes | None) -> str:
    if not data:
        return "nothing"
    text = data[:40].decode("ascii", "backslashreplace").strip()
    return repr(text)


# --------------------------------------------------------------------------- results across targets


@dataclass(frozen=True)
class TargetVerdict:
    """One target in one IP family: what the service, the doctor and `natlink probe --json` use."""

    name: str
    target: str  # "11.0.0.2:3390" (or "port 3390" when the public address is not known)
    family: str  # ipv4 | ipv6
    verdict: Verdict
    detail: str
    elapsed: float  # seconds
    via: str = "reflector"
    protocol: str = "tcp"
    external_port: int = 0
    internal: str | None = None
    identity: str = "unproven"
    outcome: str = ""  # the raw outcome the checker reported
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verdict in OK_VERDICTS

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "target": self.target, "family": self.family, "verdict": self.verdict.value,
            "ok": self.ok, "detail": self.detail, "elapsed": round(self.elapsed, 4), "via": self.via,
            "protocol": self.protocol, "external_port": self.external_port, "internal": self.internal,
            "identity": self.identity, "outcome": self.outcome, **self.extra,
        }


def result_from(obs: Observation, elapsed: float) -> TargetVerdict:
    d = decide(obs)
    return TargetVerdict(name=obs.name, target=obs.external, family=obs.family, verdict=d.verdict, detail=d.detail,
                         elapsed=elapsed, via=obs.via, protocol=obs.protocol, external_port=obs.external_port,
                         internal=obs.internal, identity=d.identity, outcome=obs.outcome)


def cross_check(results: list[TargetVerdict]) -> list[TargetVerdict]:
    """Rewrite diagnoses that only make sense next to the other targets' results.

    A TCP timeout from outside while another port of the same family works means the path to the router
    is fine and something in front of it drops that one port: the ISP (or a firewall) blocks it.
    """
    out: list[TargetVerdict] = []
    for r in results:
        if r.verdict is Verdict.TIMEOUT and r.protocol == "tcp" and r.via != "hairpin":
            working = [o for o in results if o is not r and o.ok and o.family == r.family and o.via != "hairpin"
                       and o.external_port != r.external_port]
            if working:
                ok_port = working[0].external_port
                r = replace(r, detail=(f"timeout on {r.external_port} but {ok_port} works: your ISP blocks inbound "
                                       f"port {r.external_port} (or a firewall in front of the router drops it) — "
                                       f"use a high external port instead, e.g. map {suggest_port(r.external_port)} to "
                                       "the same service"))
        out.append(r)
    return out


def exit_code(results: list[TargetVerdict]) -> int:
    """0 when every target is verified/open, 1 otherwise (also when there was nothing to probe)."""
    return 0 if results and all(r.ok for r in results) else 1
