"""One router session: the router for one command or one service round.

Opened once (discovery burst, cached or configured IGD URL), used by reconcile, public-IP detection, the
prober and the doctor in turn, serialised by a lock (protocol clients are not thread-safe). When the router
stops answering mid-way — e.g. it rebooted and its UPnP HTTP server moved to another port, so the cached
control URL is refused — the session drops the router, rediscovers without the cache and runs the same call
once more: the caller sees the answer, not the error.

``start()`` sends the discovery burst and returns: the router takes its time to answer (miniupnpd holds every
SSDP answer 50 ms) while the command goes on loading its own code; the first call that needs the router
collects the answers (no thread: the kernel stamps each answer's arrival, so its "answered in N ms" stays true).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from natlink.config import RouterCfg
from natlink.errors import NatlinkError
from natlink.portmap.base import Mapping, RouterUnavailable
from natlink.portmap.router import Opening, Router, open_router

log = logging.getLogger(__name__)
T = TypeVar("T")


def unreachable(exc: BaseException) -> bool:
    """Did the router stop answering (rather than refuse a request)? Then reopening may help."""
    from natlink.portmap.base import MappingError

    if isinstance(exc, RouterUnavailable):
        return True
    # miniupnpc's negative codes: socket/HTTP/invalid response (e.g. the control URL's port is closed now)
    return isinstance(exc, MappingError) and exc.code is not None and exc.code < 0


class RouterSession:
    """The router for one command / service round. ``with RouterSession(cfg.router, store) as s: s.run(fn)``."""

    def __init__(self, cfg: RouterCfg, store: Any = None, *, internal_ips: Iterable[str] = ()) -> None:
        self.cfg = cfg
        self.store = store
        self.internal_ips = tuple(ip for ip in internal_ips if ip)
        self.opens = 0  # how often the router was (re)discovered, for tests and the bench
        self._router: Router | None = None
        self._opening: Opening | None = None
        self._lock = threading.RLock()

    @classmethod
    def for_config(cls, cfg: Any, store: Any = None) -> "RouterSession":
        """A session that knows the configured mappings' hosts (one for another host prefers UPnP, then PCP)."""
        return cls(cfg.router, store, internal_ips=[m.internal_ip for m in cfg.mappings if m.internal_ip])

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Send the discovery burst now, collect it on first use (no-op when open or started); see the docstring."""
        with self._lock:
            if self._router is None and self._opening is None:
                self._opening = Opening(self.cfg, self.store, other_host=self.internal_ips)
                self.opens += 1
        if "upnp" in self.cfg.protocols:
            preload_upnp()

    def router(self, *, use_cache: bool = True) -> Router:
        """The open router (discovered on first use). Callers outside run() must hold the session's lock."""
        with self._lock:
            if self._opening is not None:
                opening, self._opening = self._opening, None
                self._router = opening.finish()  # raises what open_router raises
            if self._router is None:
                self._router = open_router(self.cfg, self.store, other_host=self.internal_ips, use_cache=use_cache)
                self.opens += 1
            return self._router

    @property
    def opening_since(self) -> float | None:
        """time.monotonic() when start() sent a burst that nobody has collected yet, else None."""
        opening = self._opening
        return opening.started if opening is not None else None

    @property
    def is_open(self) -> bool:
        return self._router is not None

    def invalidate(self, why: str = "") -> None:
        """Forget the router (after a failure, a config reload, a network change); the next call rediscovers."""
        with self._lock:
            if self._opening is not None:  # started but never used
                opening, self._opening = self._opening, None
                opening.close()
            if self._router is not None:
                log.info("router session closed%s", f": {why}" if why else "")
                try:
                    self._router.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    log.debug("router close failed", exc_info=True)
                self._router = None

    close = invalidate

    def __enter__(self) -> "RouterSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    def run(self, fn: Callable[[Router], T]) -> T:
        """``fn(router)`` under the lock; if the router stopped answering, rediscover (no cache) and retry once."""
        with self._lock:
            router = self.router()
            try:
                return fn(router)
            except NatlinkError as exc:
                if not unreachable(exc):
                    raise
                log.info("the router stopped answering (%s); discovering it again", exc.message)
                self.invalidate(exc.message)
            return fn(self.router(use_cache=False))

    def external_ip(self) -> str | None:
        return self.run(lambda r: r.external_ip())

    def table(self) -> list[Mapping] | None:
        """The router's table read now (over UPnP when it answered); None when nothing can list it."""
        return self.run(lambda r: r.table())

    @property
    def mapper(self) -> str | None:
        return self._router.mapper if self._router is not None else None

    @property
    def epoch(self) -> int | None:
        return self._router.epoch if self._router is not None else None

    @property
    def igd_url(self) -> str | None:
        return self._router.igd_url if self._router is not None else None


def preload_upnp() -> None:
    """Import the UPnP client while the SSDP answer is on its way (it is needed the moment it arrives)."""
    import encodings.idna  # noqa: F401 - socket.getaddrinfo imports it on the first SOAP call
    import http.client  # noqa: F401 - natlink.net.http's transport: the description's GET, the SOAP, the table
    from natlink.portmap import upnp_igd, xmlsafe  # noqa: F401 - the client, its SOAP, the description's parser
