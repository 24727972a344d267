"""Open the router: one discovery burst over the configured protocols (natlink.portmap.discover), then the
best protocol that answered. UPnP starts from a configured or cached root-description URL (~1 ms) with the
SSDP search beside it, so a stale cache costs nothing extra; NAT-PMP and PCP clients start from their answers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from natlink.config import RouterCfg
from natlink.errors import NatlinkError
from natlink.portmap import discover, lanip
from natlink.portmap.base import MAPPER_LABELS, AddRequest, Granted, MapperAnswer, Mapping, NoRouter, PortMapper
from natlink.portmap.epoch import epoch_lost

log = logging.getLogger(__name__)

STATE_KEY = "router"


@dataclass
class Router:
    """A router reached through one protocol. Other modules use .mapper, .external_ip(), .epoch, list/add/delete."""

    client: PortMapper
    gateway: str
    lan_ip: str
    lan_ip_source: str  # "config" | "auto"
    gateway_source: str
    igd_url: str | None = None
    igd_url_source: str | None = None  # "config" | "cache" | "ssdp"
    probes: list[MapperAnswer] = field(default_factory=list)
    open_time: float = 0.0
    epoch_dropped: bool = False  # the epoch went backwards since natlink last talked to this router
    previous_epoch: int | None = None
    discovery: discover.Discovery | None = None
    upnp_url: str | None = None  # UPnP's root description when UPnP answered (even if another protocol is used)
    _lister: PortMapper | None = field(default=None, repr=False)

    @property
    def mapper(self) -> str:
        return self.client.mapper

    @property
    def label(self) -> str:
        return MAPPER_LABELS[self.mapper]

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

    def table(self) -> list[Mapping] | None:
        """The router's table read in this call: through the client in use, or through UPnP when UPnP answered
        the discovery although another protocol maps (miniupnpd lists NAT-PMP/PCP mappings there too).
        None: nothing that answered can list it."""
        if self.client.can_list:
            return self.client.list()
        if self.upnp_url is None:
            return None
        if self._lister is None:
            upnp = self.discovery.heard.get("upnp") if self.discovery else None
            from natlink.portmap.upnp_igd import open_igd

            fetched = upnp.client if upnp is not None else None  # the description the burst read, if it did
            if upnp is not None:
                upnp.client = None
            self._lister = open_igd([self.upnp_url], self.lan_ip, gateway=self.gateway, fetched=fetched)
        return self._lister.list()

    def add(self, want: Mapping, lease: int, *, any_port: bool = False, nonce: str | None = None) -> Granted:
        return self.client.add(want, lease, any_port=any_port, nonce=nonce)

    @property
    def pipelines(self) -> bool:
        """Can several adds go out at once (NAT-PMP, PCP: ``add_many``)?"""
        return hasattr(self.client, "add_many")

    def add_many(self, requests: list[AddRequest]) -> list[Granted | NatlinkError]:
        """Several adds pipelined (only where ``pipelines``): each request's grant or error, none raised."""
        return self.client.add_many(requests)  # type: ignore[attr-defined]

    def delete(self, m: Mapping, *, nonce: str | None = None) -> None:
        self.client.delete(m, nonce=nonce)

    def close(self) -> None:
        self.client.close()
        upnp = self.discovery.heard.get("upnp") if self.discovery else None
        for extra in (self._lister, upnp.client if upnp is not None else None):
            if extra is not None:
                extra.close()

    def describe(self) -> str:
        where = f" at {self.igd_url}" if self.igd_url else f" at {self.gateway}"
        return f"{self.label}{where}"

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.mapper, "gateway": self.gateway, "gateway_source": self.gateway_source,
                "lan_ip": self.lan_ip, "lan_ip_source": self.lan_ip_source, "igd_url": self.igd_url,
                "igd_url_source": self.igd_url_source, "epoch": self.epoch, "epoch_dropped": self.epoch_dropped,
                "open_time": round(self.open_time, 4), "probes": [p.to_json() for p in self.probes],
                "discovery_waited": round(self.discovery.waited, 4) if self.discovery else None,
                "ssdp_ignored": list(self.discovery.ignored) if self.discovery else [],
                "wan_service": self.wan_service.to_json() if self.wan_service is not None else None}

    @property
    def wan_service(self) -> Any:
        """UPnP: which WAN connection service natlink maps on and why (igd_services.Choice); else None."""
        return getattr(self.client, "choice", None)


def _client(name: str, h: discover.Heard, cfg: RouterCfg, lan: lanip.LanSide, wan_service: Any = None) -> PortMapper:
    """A protocol client from what the burst heard (no second round trip for NAT-PMP/PCP). UPnP: on the WAN
    connection service chosen among every IGD that answered (``wan_service``: the one chosen last time)."""
    if name == "upnp":
        from natlink.portmap.upnp_igd import open_igd

        assert h.location is not None
        fetched, h.client = h.client, None  # the known URL's description, read during the burst
        return open_igd(h.locations or [h.location], lan.lan_ip, cfg.timeout, gateway=lan.gateway,
                        cached=wan_service, fetched=fetched)
    if name == "natpmp":
        from natlink.portmap.natpmp import NatPmpClient

        return NatPmpClient(lan.gateway, timeout=cfg.timeout, self_ip=lan.lan_ip, epoch=h.epoch)
    from natlink.portmap.pcp import PcpClient

    return PcpClient(lan.gateway, lan.lan_ip, timeout=cfg.timeout, epoch=h.epoch)


def _known_url(cfg: RouterCfg, cached: dict[str, Any], gateway: str, use_cache: bool) -> tuple[str, str] | None:
    if cfg.igd_url:
        return cfg.igd_url, "config"
    if use_cache and cached.get("igd_url") and cached.get("gateway") == gateway:
        return discover.repoint(str(cached["igd_url"]), gateway), "cache"
    return None


def open_router(cfg: RouterCfg, store: Any = None, mappers: tuple[str, ...] | list[str] | None = None, *,
                other_host: tuple[str, ...] = (), use_cache: bool = True) -> Router:
    """Reach the router: one discovery burst over every protocol (natlink.portmap.discover), then the best
    protocol that answered (discover.choose); NatlinkError (exit 1) within ~cfg.timeout if none answers.

    other_host: internal addresses of configured mappings; one that is not this host prefers UPnP, then PCP.
    mappers: ask only these (upnp / natpmp / pcp) instead of router.protocols; the choice is then not remembered.
    use_cache=False skips the cached IGD URL (the session's reopen after the router stopped answering)."""
    return Opening(cfg, store, mappers, other_host=other_host, use_cache=use_cache).finish()


def _load_upnp_client() -> None:
    """Import what router._client needs for UPnP (upnp_igd, http.client and ssl under it: ~25-40 ms). Done
    while the burst is out, it overlaps miniupnpd's 50 ms SSDP hold instead of following it."""
    import http.client  # noqa: F401

    import natlink.portmap.upnp_igd  # noqa: F401


class Opening:
    """open_router in two halves: the constructor sends the discovery burst, finish() collects the answers and
    builds the client. Work done between them overlaps the router's answers (miniupnpd holds SSDP's 50 ms)."""

    def __init__(self, cfg: RouterCfg, store: Any = None, mappers: tuple[str, ...] | list[str] | None = None, *,
                 other_host: tuple[str, ...] = (), use_cache: bool = True) -> None:
        self.cfg, self.store, self.other_host = cfg, store, other_host
        self.started = time.monotonic()
        self.remember = mappers is None  # a narrowed set must not change the remembered choice
        self.mappers = tuple(mappers or cfg.protocols)
        self.lan = lan = lanip.resolve(cfg.gateway, cfg.lan_ip)
        self.cached: dict[str, Any] = (store.load(STATE_KEY, {}) if store is not None else {}) or {}
        # the WAN connection service chosen last time among several; not after a failure (then all are asked)
        same_net = self.cached.get("gateway") == lan.gateway
        self.wan_service = self.cached.get("wan_service") if use_cache and same_net else None

        def open_url(url: str) -> Any:
            from natlink.portmap.upnp_soap import fetch

            return fetch(url, cfg.timeout)  # only the GET races SSDP; the client is made after (router._client)

        self.burst = discover.Burst(lan.gateway, lan.lan_ip, self.mappers, timeout=cfg.timeout,
                                    known_url=_known_url(cfg, self.cached, lan.gateway, use_cache),
                                    open_url=open_url)
        if self.mappers[0] == "upnp" and self.cached.get("protocol") in (None, "upnp"):
            _load_upnp_client()  # UPnP comes first: its code loads while the SSDP answer is on its way

    def close(self) -> None:
        """Give up without collecting (the sockets close; nothing was chosen)."""
        self.burst.close()

    def finish(self) -> Router:
        cfg, store, cached, lan, mappers = self.cfg, self.store, self.cached, self.lan, self.mappers
        same_net = cached.get("gateway") == lan.gateway
        disc = self.burst.collect()
        order = discover.choose(disc.answered, mappers, cached=cached.get("protocol") if same_net else None,
                                other_host=any(ip != lan.lan_ip for ip in self.other_host))
        client: PortMapper | None = None
        for name in order:
            try:
                client = _client(name, disc.heard[name], cfg, lan, self.wan_service)
                break
            except NatlinkError as exc:
                h = disc.heard[name]
                h.state, h.detail = discover.FAILED, exc.message
        if client is None:
            reasons = {p: disc.describe(p) for p in mappers}
            details = "; ".join(f"{MAPPER_LABELS[p]}: {why}" for p, why in reasons.items())
            raise NoRouter(f"no router answered at {lan.gateway} within {cfg.timeout:g} s ({details})",
                           "check that the router is on and UPnP or NAT-PMP/PCP is enabled in its settings; "
                           "set router.gateway if the default route does not point at it", reasons=reasons)
        upnp = disc.heard.get("upnp")
        url = upnp.location if upnp is not None and upnp.ok else None
        if client.mapper == "upnp":
            url = getattr(client, "root_url", url)  # the description holding the chosen service (several IGDs)
        mapping_upnp = upnp is not None and client.mapper == "upnp"
        router = Router(client=client, gateway=lan.gateway, lan_ip=lan.lan_ip, lan_ip_source=lan.lan_ip_source,
                        gateway_source=lan.gateway_source, igd_url=url if client.mapper == "upnp" else None,
                        igd_url_source=upnp.location_source if mapping_upnp else None,
                        probes=[MapperAnswer(p, h.ok, disc.describe(p), h.elapsed if h.elapsed is not None
                                               else disc.waited) for p, h in ((p, disc.heard[p]) for p in mappers)],
                        open_time=time.monotonic() - self.started, discovery=disc, upnp_url=url)
        now = time.time()
        if router.epoch is not None and cached.get("epoch") is not None and same_net:
            router.previous_epoch = int(cached["epoch"])
            router.epoch_dropped = epoch_lost(int(cached["epoch"]), float(cached.get("epoch_at", 0)), router.epoch,
                                              now)
            if router.epoch_dropped:
                log.warning("the router's epoch went from %s to %s: it lost its mappings (reboot or new WAN address)",
                            cached["epoch"], router.epoch)
        if store is not None:
            save_cache(store, router, cached, remember_mapper=self.remember)
            if hasattr(client, "on_change"):  # UPnP moved to another WAN service: the cache follows
                client.on_change = lambda: _recache(store, router)
        return router


def _recache(store: Any, router: Router) -> None:
    router.igd_url = router.upnp_url = getattr(router.client, "root_url", router.upnp_url)
    try:
        cached = store.load(STATE_KEY, {}) or {}
    except NatlinkError:
        cached = {}
    save_cache(store, router, cached, remember_mapper=False)


def save_cache(store: Any, router: Router, cached: dict[str, Any] | None = None, *,
               remember_mapper: bool = True) -> None:
    """Remember how the router was reached (gateway, IGD URL, protocol, last epoch) for a fast next start."""
    data = dict(cached or {})
    if data.get("gateway") not in (None, router.gateway):
        data = {}  # another network: forget everything learned about the old router
    data.update({"gateway": router.gateway, "lan_ip": router.lan_ip})
    if remember_mapper:
        data["protocol"] = router.mapper
    if router.upnp_url:  # only ever a URL at the gateway (discover re-points or ignores the others)
        data["igd_url"] = router.upnp_url
    choice = router.wan_service
    if choice is not None and len(getattr(router.client, "services", ())) > 1:
        data["wan_service"] = choice.cache_entry()  # several to choose from: skip asking them all next time
    elif router.mapper == "upnp":
        data.pop("wan_service", None)
    if router.epoch is not None:
        data.update({"epoch": router.epoch, "epoch_at": time.time()})
    if data != cached:
        try:
            store.save(STATE_KEY, data, durable=False)  # a cache: lost, it costs the next run a search
        except NatlinkError as exc:  # a cache: a read-only state dir costs the next run a search, nothing more
            log.debug("router facts not cached: %s", exc)
