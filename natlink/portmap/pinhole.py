"""IPv6 pinholes for the configured mappings: the plan (natlink.portmap.pinhole_plan), then open/renew/delete them
over PCP or UPnP WANIPv6FirewallControl, and record natlink's own in the ``pinholes`` state key.

No NAT66: a pinhole opens the internal port on the target's global address; that is the outside port too.
Design: docs/design/ipv6.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

from natlink.errors import NatlinkError
from natlink.ipv6addr import Selection, default_gateway6, read_addresses, select
from natlink.portmap.pinhole_pcp import PcpPinholes
from natlink.portmap.pinhole_plan import (ADD, DELETE, MAPPER_LABEL, MOVE, RENEW, STATE_KEY, Hole, Step, Want, load_owned,
                                          plan, port_notes, save_owned, wants)
from natlink.portmap.pinhole_upnp import NoFirewallControl, PinholeError, UpnpPinholes

log = logging.getLogger(__name__)

__all__ = ["ADD", "DELETE", "MOVE", "RENEW", "MAPPER_LABEL", "Hole", "Step", "Want", "plan", "port_notes", "wants",
           "PinholeReport", "reconcile_pinholes", "remove_pinholes", "load_owned", "save_owned", "STATE_KEY",
           "current_selection"]

@dataclass
class Outcome:
    step: Step
    ok: bool
    message: str = ""
    hint: str = ""
    hole: Hole | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.step.name, "action": self.step.action, "ok": self.ok, "message": self.message,
                "hint": self.hint or None, "notes": self.notes, "pinhole": self.hole.to_json() if self.hole else None}


@dataclass
class PinholeReport:
    selection: Selection | None
    outcomes: list[Outcome] = field(default_factory=list)
    problem: str | None = None  # nothing could be tried (no global address, no firewall control)
    hint: str = ""
    mapper: str | None = None  # the firewall that took the requests: pcp | upnp
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None and all(o.ok for o in self.outcomes)

    @property
    def address(self) -> str | None:
        return self.selection.address if self.selection else None

    @property
    def next_renewal(self) -> float | None:
        """Seconds until the first pinhole opened in this run is at half its lease (renew-at-half)."""
        halves = [o.hole.at + o.hole.lease / 2 - time.time() for o in self.outcomes if o.ok and o.hole and o.hole.lease]
        return max(0.0, min(halves)) if halves else None

    def problems(self) -> list[str]:
        out = [f"IPv6: {self.problem}"] if self.problem else []
        return out + [f"{o.step.name} (IPv6): {o.message}" for o in self.outcomes if not o.ok]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "address": self.address, "via": self.mapper, "problem": self.problem, "hint": self.hint or None,
                "notes": self.notes, "steps": [o.to_json() for o in self.outcomes]}


# --------------------------------------------------------------------------- protocols


class Firewall(Protocol):
    mapper: str  # "pcp" | "upnp"

    def add(self, w: Want) -> Hole: ...

    def renew(self, h: Hole, w: Want) -> tuple[Hole, str]: ...

    def delete(self, h: Hole) -> None: ...


Factories = list[tuple[str, Callable[[], Firewall]]]  # (mapper, how to reach its firewall), in order


@dataclass
class PcpFirewall:
    client: PcpPinholes
    mapper = "pcp"

    def add(self, w: Want) -> Hole:
        nonce, life = self.client.add(w.protocol, w.port, w.lease, third_party=w.address)
        return Hole(w.name, w.protocol, w.port, w.address, "pcp", nonce=nonce, lease=life, at=time.time())

    def renew(self, h: Hole, w: Want) -> tuple[Hole, str]:
        # miniupnpd forgets a nonce it renewed (lab notes), so a renewed pinhole could never be deleted:
        # renew by giving it back and opening it again with a fresh nonce (new connections wait one round trip).
        if h.nonce:
            try:
                self.client.delete(h.protocol, h.port, h.nonce, third_party=h.address)
            except PinholeError as exc:
                log.debug("PCP pinhole %s not given back before renewal: %s", h.name, exc.message)
        return self.add(w), "re-requested over PCP: the router confirmed it"

    def delete(self, h: Hole) -> None:
        if not h.nonce:
            raise PinholeError(None, f"natlink has no PCP nonce for {h.label}", "it closes at the end of its lease")
        self.client.delete(h.protocol, h.port, h.nonce, third_party=h.address)


@dataclass
class UpnpFirewall:
    client: UpnpPinholes
    mapper = "upnp"

    def add(self, w: Want) -> Hole:
        uid = self.client.add(w.address, w.protocol, w.port, w.lease)
        return Hole(w.name, w.protocol, w.port, w.address, "upnp", unique_id=uid, lease=w.lease, at=time.time())

    def renew(self, h: Hole, w: Want) -> tuple[Hole, str]:
        if h.unique_id is not None:
            try:
                self.client.update(h.unique_id, w.lease)
                return replace(h, lease=w.lease, at=time.time()), f"UpdatePinhole {h.unique_id} accepted by the router"
            except PinholeError as exc:
                if exc.code not in (704, 402):  # miniupnpd answers 402 for an ID it does not know
                    raise
        hole = self.add(w)
        return hole, (f"the router had forgotten pinhole {h.unique_id} (restart?): added again as {hole.unique_id}")

    def delete(self, h: Hole) -> None:
        if h.unique_id is None:
            raise PinholeError(None, f"natlink has no UPnP pinhole ID for {h.label}", "it closes at the end of its lease")
        try:
            self.client.delete(h.unique_id)
        except PinholeError as exc:
            if exc.code != 704:  # already gone
                raise


@dataclass
class Context:
    """Where pinhole requests go: the gateway's IPv6 address, this host's address, the IGD's root URL."""

    source: str
    gateway6: str | None
    root_url: str | None
    mappers: tuple[str, ...]  # router.protocols
    timeout: float = 2.0

    def firewalls(self) -> Factories:
        """(mapper, factory) in router.protocols order; NAT-PMP has no IPv6."""
        out: Factories = []
        for p in self.mappers:
            if p == "pcp" and self.gateway6:
                out.append(("pcp", lambda: PcpFirewall(PcpPinholes(self.gateway6 or "", self.source, self.timeout))))
            elif p == "upnp" and self.root_url and self.gateway6:
                out.append(("upnp", lambda: UpnpFirewall(UpnpPinholes.locate(self.root_url or "", self.gateway6 or "",
                                                                             self.source, self.timeout))))
        return out


def no_control(ctx: Context, tried: list[str]) -> tuple[str, str]:
    if not ctx.gateway6:
        return ("this host has no IPv6 default route, so no router to ask for a pinhole",
                "check the router's IPv6 settings (router advertisements)")
    detail = "; ".join(tried) or "neither PCP nor UPnP is in router.protocols"
    return (f"the router offers no IPv6 firewall control ({detail})",
            "enable UPnP IGD v2 or PCP on the router, or open the port in its IPv6 firewall settings by hand")


# --------------------------------------------------------------------------- I/O


def context(cfg: Any, store: Any, source: str, root_url: str | None) -> Context:
    gw = default_gateway6()
    gateway6 = None
    if gw is not None:
        gateway6 = f"{gw[0]}%{gw[1]}" if gw[0].lower().startswith("fe80") and gw[1] else gw[0]
    if root_url is None:
        root_url = cfg.router.igd_url or ((store.load("router", {}) or {}).get("igd_url") if store else None)
    return Context(source, gateway6, root_url, tuple(cfg.router.protocols), cfg.router.timeout)


def interface_of(cfg: Any) -> str | None:
    return next((s.split(":", 1)[1] for s in cfg.public_ip.sources if s.startswith("interface:")), None)


def current_selection(cfg: Any) -> Selection:
    iface = interface_of(cfg)
    try:
        return select(read_addresses(iface), iface)
    except OSError as exc:
        return Selection(None, problem=f"cannot read this host's IPv6 addresses: {exc}")


def reconcile_pinholes(cfg: Any, store: Any, *, root_url: str | None = None, names: list[str] | None = None,
                       selection: Selection | None = None) -> PinholeReport:
    """`natlink map` for IPv6 (names: only these mappings). Nothing is tried without a global address."""
    owned = load_owned(store)
    if names is not None:
        owned = {n: h for n, h in owned.items() if n in names}
    if not any(cfg.mapping_ipv6(m) for m in cfg.mappings) and not owned:
        return PinholeReport(selection)  # IPv4-only configs pay nothing (no `ip` subprocess)
    selection = selection or current_selection(cfg)
    if selection.address is None:
        return PinholeReport(selection, problem=f"ipv6 = true but {selection.problem}",
                             hint="give this host a global IPv6 address (router advertisements / DHCPv6), or set "
                                  "ipv6 = false on the mapping")
    want = [w for w in wants(cfg, selection) if names is None or w.name in names]
    steps = plan(want, owned, names)
    report = PinholeReport(selection, notes=port_notes(want))
    _apply(report, steps, context(cfg, store, selection.address, root_url), store)
    return report


def remove_pinholes(cfg: Any, store: Any, names: list[str] | None = None, *, root_url: str | None = None) -> PinholeReport:
    """`natlink unmap` for IPv6: delete natlink's own pinholes (all, or the named ones)."""
    owned = {n: h for n, h in load_owned(store).items() if names is None or n in names}
    selection = current_selection(cfg)
    report = PinholeReport(selection)
    if not owned:
        return report
    source = selection.address or next(iter(owned.values())).address
    _apply(report, [Step(DELETE, n, None, h) for n, h in owned.items()], context(cfg, store, source, root_url), store)
    return report


def _apply(report: PinholeReport, steps: list[Step], ctx: Context, store: Any) -> None:
    owned = load_owned(store)
    candidates = ctx.firewalls()  # (protocol, factory), the working one first once found
    current: Firewall | None = None
    tried: list[str] = []
    for step in steps:
        outcome = None
        while outcome is None:
            if current is None and step.action != DELETE:
                if not candidates:
                    report.problem, report.hint = no_control(ctx, tried)
                    break
                name, factory = candidates[0]
                try:
                    current = factory()
                except NoFirewallControl as exc:
                    tried.append(f"UPnP: {exc.message}" if name == "upnp" else exc.message)
                    candidates.pop(0)
                    continue
            try:
                outcome = _run(step, current, candidates, ctx)
            except NoFirewallControl as exc:  # PCP is known to answer only once asked
                if step.action == DELETE or current is None:
                    outcome = Outcome(step, False, exc.message, exc.hint)
                    break
                tried.append(exc.message)
                candidates.pop(0)
                current = None
        if outcome is None:
            break
        report.mapper = current.mapper if current is not None else report.mapper
        report.outcomes.append(outcome)
        if outcome.ok:
            if outcome.hole is not None:
                owned[step.name] = outcome.hole
            else:
                owned.pop(step.name, None)
    try:
        save_owned(store, owned)
    except NatlinkError as exc:
        report.notes.append(f"pinholes not recorded in the state: {exc.message}")


def _run(step: Step, fw: Firewall | None, candidates: Factories, ctx: Context) -> Outcome:
    try:
        if step.action == DELETE:
            h = step.have
            assert h is not None
            if h.address != ctx.source:
                # Renumbered away (or another host's): the router takes the request only from that address.
                return Outcome(step, True, f"{h.label} is not this host's current address, so the router will not "
                                           f"take its deletion from here; it closes at the end of its lease "
                                           f"({h.lease} s at most)")
            (fw if fw is not None and fw.mapper == h.mapper else _by_mapper(h.mapper, candidates)).delete(h)
            return Outcome(step, True, f"deleted {h.label} (via {MAPPER_LABEL.get(h.mapper, h.mapper)})")
        want = step.want
        assert want is not None
        if step.action == RENEW and step.have is not None and step.have.mapper == fw.mapper:
            hole, how = fw.renew(step.have, want)
            return Outcome(step, True, how, hole=hole)
        notes = []
        if step.action == MOVE and step.have is not None:
            notes.append(f"moved from {step.have.label}" + (
                " (the old address is gone: that pinhole closes at the end of its lease)"
                if step.have.address != ctx.source else ""))
            if step.have.address == ctx.source:
                try:
                    fw.delete(step.have)
                except PinholeError as exc:
                    notes.append(f"the old pinhole could not be deleted: {exc.message}")
        hole = fw.add(want)
        return Outcome(step, True, f"opened {want.label} for {hole.lease} s (via {MAPPER_LABEL[fw.mapper]})", hole=hole,
                       notes=notes)
    except NoFirewallControl:
        raise
    except PinholeError as exc:
        return Outcome(step, False, exc.message, exc.hint)


def _by_mapper(mapper: str, candidates: Factories) -> Firewall:
    for name, factory in candidates:
        if name == mapper:
            return factory()
    raise PinholeError(None, f"the pinhole was opened over {mapper.upper()}, which is not in router.protocols now",
                       f"add {mapper!r} to router.protocols to delete it, or let it close at the end of its lease")
