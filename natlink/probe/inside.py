"""Look inside before the outside dials: hold each free internal port with a nonce listener (proves that a
dial-back reached this host), or read what the running service says first."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from natlink.probe.dial import dial_tcp
from natlink.probe.nonce_listener import NonceHub, NonceListener, try_listen
from natlink.probe.targets import InsideKey, Target, inside_key
from natlink.probe.verdicts import Inside

GREETING_WINDOW = 0.3  # how long a service gets to speak first when read from inside
GREETING_MAX = 128


@dataclass
class InsideView:
    inside: Inside = Inside.UNKNOWN
    greeting: bytes | None = None
    listener: NonceListener | None = None
    note: str = ""


def _listen_inside(ip: str, port: int, protocol: str, hub: NonceHub) -> InsideView | None:
    """Hold the internal port ourselves when it is free (a bind: instant). None: something listens there (TCP),
    so look at it by dialing."""
    listener, status = try_listen(ip, port, protocol, hub)
    if listener is not None:
        return InsideView(Inside.SELF, listener=listener)
    if status.startswith("error"):
        return InsideView(note=status)
    if protocol == "udp":
        return InsideView(Inside.SERVICE) if status == "in-use" else InsideView()
    return None


def _look_inside(ip: str, port: int, protocol: str, timeout: float) -> InsideView:
    """What runs on an internal port natlink could not (or may not) hold itself: dial it and read its greeting."""
    if protocol == "udp":
        return InsideView()
    outcome = dial_tcp(ip, port, min(timeout, 1.0), read=GREETING_MAX, read_timeout=GREETING_WINDOW)
    if outcome.outcome == "open":
        return InsideView(Inside.SERVICE, greeting=outcome.data or None)
    if outcome.outcome == "refused":
        return InsideView(Inside.NOTHING)
    return InsideView(note=f"{ip}:{port} from here: {outcome.outcome}")


def inside_views(pool: ThreadPoolExecutor, tlist: list[Target], listen: bool,
                 hub: NonceHub) -> dict[InsideKey, InsideView]:
    """One view per internal (ip, port, protocol): a nonce listener where the port is free, else a dial."""
    keys = {k: t for t in tlist if (k := inside_key(t)) is not None}
    views: dict[InsideKey, InsideView] = {}
    dials: dict[InsideKey, Future[InsideView]] = {}
    for k, t in keys.items():
        # Binding a free port takes microseconds: only the dials to running services go to the pool,
        # so N free ports cost no N thread starts.
        view = _listen_inside(*k, hub) if listen else None
        if view is not None:
            views[k] = view
        else:
            dials[k] = pool.submit(_look_inside, k[0], k[1], k[2], t.probe.timeout)
    views.update({k: f.result() for k, f in dials.items()})
    return views


def read_len(views: dict[InsideKey, InsideView], t: Target) -> int:
    """How many bytes the outside should read back: the nonce line, or what the service said first."""
    key = inside_key(t)
    view = views.get(key) if key else None
    if view is not None and view.listener is not None:
        return len(view.listener.line)
    return len(view.greeting) if view is not None and view.greeting else 0
