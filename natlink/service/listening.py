"""The service's listeners: NAT-PMP/PCP announcements and host address changes (events.py), and the UPnP GENA
subscription (gena.py). They only trigger jobs; started and stopped as one set."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from natlink.config import Config
from natlink.errors import NatlinkError
from natlink.service.events import AddressListener, AnnouncementListener, Event
from natlink.state import StateStore

log = logging.getLogger("natlink.service")


class Listening:
    def __init__(self, on_event: Callable[[Event], None], store: StateStore) -> None:
        self.on_event = on_event
        self.store = store
        self._listeners: list[Any] = []
        self._gena: Any = None  # the GenaSubscriber while subscribed to the router's UPnP events
        self._gena_lock = threading.Lock()
        self._gena_allowed = False  # set while listeners run (events on, not stopping)
        self._lan_ip, self._gateway = "", None

    def start(self, cfg: Config, *, router: bool) -> None:
        """router False: nothing configured uses the router, so only this host's address changes are heard."""
        if not router:
            address = AddressListener(self.on_event, ipv6=_wants_ipv6(cfg))
            if address.start():
                self._listeners.append(address)
            return
        from natlink.portmap import lanip

        try:  # the same gateway / LAN address the port mapper uses
            side = lanip.resolve(cfg.router.gateway, cfg.router.lan_ip)
            gateway, lan_ip = side.gateway, side.lan_ip
        except NatlinkError as exc:
            log.debug("LAN side unknown: %s", exc)
            gateway = cfg.router.gateway
            lan_ip = "" if cfg.router.lan_ip == "auto" else cfg.router.lan_ip
        if lan_ip and any(p in cfg.router.protocols for p in ("natpmp", "pcp", "upnp")):
            # miniupnpd and most NAT-PMP/PCP routers announce even when UPnP is the protocol in use
            listener = AnnouncementListener(self.on_event, lan_ip, gateway)
            if listener.start():
                self._listeners.append(listener)
        else:
            log.warning("no LAN address toward the router: router announcements not heard (polling covers it)")
        address = AddressListener(self.on_event, ipv6=_wants_ipv6(cfg))
        if address.start():
            self._listeners.append(address)
        self._lan_ip, self._gateway = lan_ip, gateway
        with self._gena_lock:
            self._gena_allowed = bool(lan_ip)
        # UPnP GENA: with a known IGD URL at once (in the background: it asks the router); otherwise the
        # router poll starts it once UPnP turns out to be the protocol in use.
        url = cfg.router.igd_url
        if not url and "upnp" in cfg.router.protocols:
            with contextlib.suppress(NatlinkError):
                cached = self.store.load("router", {}) or {}
                url = cached.get("igd_url") if cached.get("gateway") in (None, gateway) else None
        if url and lan_ip:
            threading.Thread(target=self.ensure_gena, args=(url, cfg.router.timeout), name="natlink-gena-start",
                             daemon=True).start()

    def ensure_gena(self, root_url: str, router_timeout: float) -> None:
        """Subscribe to the IGD's WAN connection events (once per root URL); no-op unless started."""
        from natlink.service.gena import GenaSubscriber

        with self._gena_lock:
            if not self._gena_allowed or (self._gena is not None and self._gena.root_url == root_url):
                return
            if self._gena is not None:
                self._gena.stop()
                self._gena = None
            chosen = None  # the WAN connection service natlink maps on, when it chose among several
            with contextlib.suppress(NatlinkError):
                chosen = (self.store.load("router", {}) or {}).get("wan_service")
            sub = GenaSubscriber(self.on_event, root_url, self._lan_ip, self._gateway,
                                 timeout=min(router_timeout, 1.0), wan_service=chosen)
            if sub.start():
                self._gena = sub

    def stop(self) -> None:
        for listener in self._listeners:
            listener.stop()
        self._listeners.clear()
        with self._gena_lock:
            self._gena_allowed = False
            if self._gena is not None:
                self._gena.stop()
                self._gena = None


def _wants_ipv6(cfg: Config) -> bool:
    """IPv6 address events matter for AAAA records (public_ip.ipv6) and for pinholes (a mapping's ipv6)."""
    return cfg.public_ip.ipv6 or any(cfg.mapping_ipv6(m) for m in cfg.mappings)
