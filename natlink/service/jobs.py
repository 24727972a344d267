"""The one place the service calls the capability modules (port mapping, public IP, DDNS, probe).

Imports are lazy: `natlink run` starts fast, and the scheduler, events and health code do not depend on
those modules being importable. Everything here is a thin call through the agreed API (docs/design.md).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from natlink.config import Config
from natlink.state import StateStore

if TYPE_CHECKING:  # imported lazily at run time (see the module docstring)
    from natlink.portmap.reconcile import Action, ReconcileReport
    from natlink.portmap.session import RouterSession

log = logging.getLogger(__name__)


def router_session(cfg: Config, store: StateStore | None) -> RouterSession:
    """The service's router session: discovered on first use, shared by every job, reopened after a failure."""
    from natlink.portmap.session import RouterSession as _Session

    return _Session.for_config(cfg, store)


def reconcile(cfg: Config, store: StateStore, session: RouterSession | None = None, *,
              force_renew: bool = False) -> ReconcileReport:
    """Create/renew/replace the configured mappings, verifying each with the router (.plan, .actions, .ok).

    force_renew re-requests every natlink lease: NAT-PMP/PCP cannot list the router's table, and a restart
    shorter than the epoch check's slack is invisible, so a router announcement is the signal to do it."""
    from natlink.portmap.reconcile import reconcile as _reconcile

    return _reconcile(cfg, store, dry_run=False, session=session, force_renew=force_renew)


def unmap_all(cfg: Config, store: StateStore, session: RouterSession | None = None) -> list[Action]:
    """Remove natlink's own mappings (only those it made for this host)."""
    from natlink.portmap.reconcile import unmap

    return list(unmap(cfg, store, None, session=session))


def pinholes(cfg: Config, store: StateStore, session: RouterSession | None = None) -> Any:
    """Open/renew/move the IPv6 pinholes (natlink.portmap.pinhole); None when no mapping asks for IPv6 and
    natlink owns none. -> PinholeReport(.ok, .outcomes, .problem)."""
    from natlink.portmap.pinhole import load_owned, reconcile_pinholes

    if not any(cfg.mapping_ipv6(m) for m in cfg.mappings) and not load_owned(store):
        return None
    return reconcile_pinholes(cfg, store, root_url=_upnp_url(session))


def unmap_pinholes(cfg: Config, store: StateStore, session: RouterSession | None = None) -> Any:
    from natlink.portmap.pinhole import remove_pinholes

    return remove_pinholes(cfg, store, root_url=_upnp_url(session))


def _upnp_url(session: RouterSession | None) -> str | None:
    """The IGD's root description as the session found it (the pinhole code falls back to the cache)."""
    if session is None or not session.is_open:
        return None
    try:
        return session.run(lambda r: r.upnp_url)
    except Exception:  # noqa: BLE001 - the cache and config are the fallback
        return None


def detect(cfg: Config, router: RouterSession | None = None) -> Any:
    """-> PublicIpReport(public_ipv4, public_ipv6, router_wan_ipv4, verdict, problem, ...)."""
    from natlink.publicip import detect as _detect

    return _detect(cfg, router=router)


def update_ddns(cfg: Config, store: StateStore, report: Any, names: list[str] | None,
                forced: frozenset[str] = frozenset()) -> list[Any]:
    """-> list[EntryResult(name, action, outcome, fatal, message)]; providers are contacted only on change,
    except for the entries in ``forced`` (the status page's "update now", like `natlink ddns --force NAME`)."""
    from natlink.ddns.updater import update_all

    from natlink.service.health import STATE_KEY

    since = (store.load(STATE_KEY) or {}).get("started")  # this service's start: see authoritative.changed
    since = since if isinstance(since, (int, float)) else None
    forced = frozenset(n for n in forced if any(d.name == n for d in cfg.ddns))
    if not forced:
        return list(update_all(cfg, store, report, force=False, names=names, since=since))
    rest = [d.name for d in cfg.ddns if d.name not in forced and (not names or d.name in names)]
    results = list(update_all(cfg, store, report, force=True, names=sorted(forced), since=since))
    return results + (list(update_all(cfg, store, report, force=False, names=rest, since=since)) if rest else [])


def probe(cfg: Config, store: StateStore, report: Any, session: RouterSession | None = None) -> list[Any]:
    """-> list[TargetVerdict(name, target, family, verdict, detail, elapsed, .ok)]; saved as state key "probe".
    The router (WAN address, table) is asked through ``session``: no discovery of its own per run."""
    from natlink.probe.prober import probe_all, results_to_state

    results = list(probe_all(cfg, targets=None, report=report, router=session))
    store.save("probe", results_to_state(results))
    return results


def to_json(obj: Any) -> Any:
    """A capability result as JSON data: its own .to_json(), which says field by field what may be written.

    No asdict() fallback: that would copy every field, a secret or an object json cannot write included."""
    if hasattr(obj, "to_json"):
        return obj.to_json()
    raise TypeError(f"{type(obj).__name__} has no to_json(): natlink writes only what a type says is safe to write")
