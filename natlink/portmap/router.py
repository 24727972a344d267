"""Open the router: try the configured protocols together, the first that works wins.

UPnP uses a cached or configured root-description URL (selectigd(url) costs ~1 ms) and falls back to our own
SSDP search when the cache is stale; NAT-PMP and PCP send one small request each to the gateway.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from natlink.config import RouterCfg
from natlink.errors import NatlinkError
from natlink.portmap import lanip
from natlink.portmap.base import Granted, Mapping, PortMapper, ProbeResult
from natlink.portmap.epoch import epoch_lost

log = logging.getLogger(__name__)

STATE_KEY = "router"
PREFERENCE_GRACE = 0.03  # after a success, wait this long for a protocol listed earlier in router.protocols
LABELS = {"upnp": "UPnP IGD", "natpmp": "NAT-PMP", "pcp": "PCP"}


@dataclass
class Router:
    """A router reached through one protocol. Other modules use .protocol, .external_ip(), .epoch, list/add/delete."""

    client: PortMapper
    gateway: str
    lan_ip: str
    lan_ip_source: str  # "config" | "auto"
    gateway_source: str
    igd_url: str | None = None
    igd_url_source: str | None = None  # "config" | "cache" | "ssdp"
    probes: list[ProbeResult] = field(default_factory=list)
    open_time: float = 0.0
    epoch_dropped: bool = False  # the epoch went backwards since natlink last talked to this router
    previous_epoch: int | None = None

    @property
    def protocol(self) -> str:
        return self.client.protocol

    @property
    def label(self) -> str:
        return LABELS[self.protocol]

    @property
    def epoch(self) -> int | None:
        return self.client.epoch

    @property
    def can_list(self) -> bool:
        return self.client.can_list

    def external_ip(self) -> str | None:
        return self.client.external_ip()

    def list(self) -> list[Mapping] | None:
        """The router's whole table (UPnP); None when the protocol cannot list it (NAT-PMP, PCP)."""
        return self.client.list()

    def add(self, want: Mapping, lease: int, *, any_port: bool = False, nonce: str | None = None) -> Granted:
        return self.client.add(want, lease, any_port=any_port, nonce=nonce)

    def delete(self, m: Mapping, *, nonce: str | None = None) -> None:
        self.client.delete(m, nonce=nonce)

    def close(self) -> None:
        self.client.close()

    def describe(self) -> str:
        where = f" at {self.igd_url}" if self.igd_url else f" at {self.gateway}"
        return f"{self.label}{where}"

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "gateway": self.gateway, "gateway_source": self.gateway_source,
                "lan_ip": self.lan_ip, "lan_ip_source": self.lan_ip_source, "igd_url": self.igd_url,
                "igd_url_source": self.igd_url_source, "epoch": self.epoch, "epoch_dropped": self.epoch_dropped,
                "open_time": round(self.open_time, 4), "probes": [p.to_json() for p in self.probes]}


def _open_upnp(cfg: RouterCfg, lan: lanip.LanSide, cached: dict[str, Any], deadline: float) -> tuple[PortMapper, str, str]:
    from natlink.portmap import ssdp
    from natlink.portmap.upnp import UpnpClient

    candidates: list[tuple[str, str]] = []
    if cfg.igd_url:
        candidates.append((cfg.igd_url, "config"))
    if cached.get("igd_url") and cached.get("gateway") == lan.gateway and cached["igd_url"] != cfg.igd_url:
        candidates.append((cached["igd_url"], "cache"))
    for url, source in candidates:
        try:
            return UpnpClient(url, lan.lan_ip, cfg.timeout), url, source
        except NatlinkError as exc:
            log.info("UPnP: %s URL %s did not work (%s); searching with SSDP", source, url, exc.message)
    answer = ssdp.search(lan.gateway, max(0.05, deadline - time.monotonic()), bind_ip=lan.lan_ip)
    if answer is None:
        raise NatlinkError("no UPnP IGD answered the SSDP search")
    return UpnpClient(answer.location, lan.lan_ip, cfg.timeout), answer.location, "ssdp"


def _open_natpmp(cfg: RouterCfg, lan: lanip.LanSide, deadline: float) -> PortMapper:
    from natlink.portmap.natpmp import NatPmpClient

    client = NatPmpClient(lan.gateway, timeout=max(0.05, deadline - time.monotonic()), self_ip=lan.lan_ip)
    client.probe()
    client.timeout = cfg.timeout
    return client


def _open_pcp(cfg: RouterCfg, lan: lanip.LanSide, deadline: float) -> PortMapper:
    from natlink.portmap.pcp import PcpClient, result_error

    client = PcpClient(lan.gateway, lan.lan_ip, timeout=max(0.05, deadline - time.monotonic()))
    reply = client.probe()
    if reply.result not in (0, 7, 8):  # an answer, but PCP is unusable (e.g. UNSUPP_VERSION from a NAT-PMP box)
        raise result_error(reply.result)
    client.timeout = cfg.timeout
    return client


def open_router(cfg: RouterCfg, store: Any = None, protocols: tuple[str, ...] | list[str] | None = None) -> Router:
    """Reach the router with the first working protocol; NatlinkError (exit 1) within ~cfg.timeout if none answers."""
    started = time.monotonic()
    deadline = started + cfg.timeout
    remember = protocols is None  # a narrowed set (e.g. "upnp" to list the table) must not change the choice
    protocols = tuple(protocols or cfg.protocols)
    lan = lanip.resolve(cfg.gateway, cfg.lan_ip)
    cached: dict[str, Any] = (store.load(STATE_KEY, {}) if store is not None else {}) or {}
    if cached.get("gateway") == lan.gateway and cached.get("protocol") in protocols:
        # Stick with what worked last time: switching protocols would orphan natlink's records of its mappings.
        protocols = (cached["protocol"],) + tuple(p for p in protocols if p != cached["protocol"])

    # A UPnP opener that must search with SSDP cannot answer within the grace: miniupnpd (most home routers)
    # holds every M-SEARCH answer for 50 ms against floods, and the description fetch follows. Waiting for it
    # would only add the grace to every cold start.
    upnp_searching = not cfg.igd_url and not (cached.get("igd_url") and cached.get("gateway") == lan.gateway)
    results: queue.Queue[tuple[str, Any, BaseException | None, float]] = queue.Queue()
    openers: dict[str, Callable[[], Any]] = {
        "upnp": lambda: _open_upnp(cfg, lan, cached, deadline),
        "natpmp": lambda: _open_natpmp(cfg, lan, deadline),
        "pcp": lambda: _open_pcp(cfg, lan, deadline),
    }

    def attempt(name: str) -> None:
        t0 = time.monotonic()
        try:
            results.put((name, openers[name](), None, time.monotonic() - t0))
        except BaseException as exc:  # reported, never raised in the thread
            results.put((name, None, exc, time.monotonic() - t0))

    for name in protocols:
        threading.Thread(target=attempt, args=(name,), name=f"natlink-open-{name}", daemon=True).start()

    done: dict[str, tuple[Any, BaseException | None, float]] = {}
    winner: str | None = None
    while len(done) < len(protocols):
        if winner is not None:
            # Prefer the order in router.protocols, but never wait long for it.
            earlier_pending = [p for p in protocols[:protocols.index(winner)] if p not in done
                               and not (p == "upnp" and upnp_searching)]
            if not earlier_pending:
                break
            wait = min(PREFERENCE_GRACE - (time.monotonic() - winner_at), deadline + 0.2 - time.monotonic())
        else:
            wait = deadline + 0.2 - time.monotonic()  # each opener stops itself at the deadline
        if wait <= 0:
            break
        try:
            name, value, exc, elapsed = results.get(timeout=wait)
        except queue.Empty:
            break
        done[name] = (value, exc, elapsed)
        if exc is None and (winner is None or protocols.index(name) < protocols.index(winner)):
            winner, winner_at = name, time.monotonic()

    probes = []
    for name in protocols:
        if name in done:
            value, exc, elapsed = done[name]
            detail = "answered" if exc is None else (getattr(exc, "message", None) or str(exc) or type(exc).__name__)
            probes.append(ProbeResult(name, exc is None, detail, elapsed))
        else:
            probes.append(ProbeResult(name, False, "no answer in time", time.monotonic() - started))

    if winner is None:
        details = "; ".join(f"{LABELS[p.protocol]}: {p.detail}" for p in probes)
        raise NatlinkError(f"no router answered at {lan.gateway} within {cfg.timeout:g} s ({details})",
                           "check that the router is on and UPnP or NAT-PMP/PCP is enabled in its settings; "
                           "set router.gateway if the default route does not point at it")
    for name, (value, exc, _) in done.items():
        if name != winner and value is not None:
            (value[0] if isinstance(value, tuple) else value).close()

    value = done[winner][0]
    if winner == "upnp":
        client, url, url_source = value
    else:
        client, url, url_source = value, None, None
    router = Router(client=client, gateway=lan.gateway, lan_ip=lan.lan_ip, lan_ip_source=lan.lan_ip_source,
                    gateway_source=lan.gateway_source, igd_url=url, igd_url_source=url_source, probes=probes,
                    open_time=time.monotonic() - started)
    now = time.time()
    if router.epoch is not None and cached.get("epoch") is not None and cached.get("gateway") == lan.gateway:
        router.previous_epoch = int(cached["epoch"])
        router.epoch_dropped = epoch_lost(int(cached["epoch"]), float(cached.get("epoch_at", 0)), router.epoch, now)
        if router.epoch_dropped:
            log.warning("the router's epoch went from %s to %s: it lost its mappings (reboot or new WAN address)",
                        cached["epoch"], router.epoch)
    if store is not None:
        save_cache(store, router, cached, remember_protocol=remember)
    return router


def save_cache(store: Any, router: Router, cached: dict[str, Any] | None = None, *,
               remember_protocol: bool = True) -> None:
    """Remember how the router was reached (gateway, IGD URL, protocol, last epoch) for a fast next start."""
    data = dict(cached or {})
    if data.get("gateway") not in (None, router.gateway):
        data = {}  # another network: forget everything learned about the old router
    data.update({"gateway": router.gateway, "lan_ip": router.lan_ip})
    if remember_protocol:
        data["protocol"] = router.protocol
    if router.igd_url:
        data["igd_url"] = router.igd_url
    if router.epoch is not None:
        data.update({"epoch": router.epoch, "epoch_at": time.time()})
    if data != cached:
        try:
            store.save(STATE_KEY, data)
        except NatlinkError as exc:  # a cache: a read-only state dir costs the next run a search, nothing more
            log.debug("router facts not cached: %s", exc)
