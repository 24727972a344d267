"""The one place the service calls the capability modules (port mapping, public IP, DDNS, probe).

Imports are lazy: `natlink run` starts fast, and the scheduler, events and health code do not depend on
those modules being importable. Everything here is a thin call through the agreed API (docs/design.md).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from natlink.config import Config
from natlink.state import StateStore

log = logging.getLogger(__name__)


def open_router(cfg: Config, store: StateStore | None) -> Any:
    """A Router (.protocol, .external_ip(), .epoch, .close()); NatlinkError within ~router.timeout if none answers."""
    from natlink.portmap.router import open_router as _open

    return _open(cfg.router, store=store)


def reconcile(cfg: Config, store: StateStore, router: Any = None) -> Any:
    """Create/renew/replace the configured mappings; -> ReconcileReport(.plan, .actions, .ok, .wan_problem)."""
    from natlink.portmap.reconcile import reconcile as _reconcile

    return _reconcile(cfg, store, dry_run=False, router=router)


def renew_all_now(store: StateStore) -> int:
    """Mark every natlink mapping as due for renewal, so the next reconcile re-requests it (idempotent).

    For NAT-PMP/PCP the router's table cannot be read, and a restart shorter than the epoch check's slack
    (seconds) is invisible; a router announcement is the signal that it may have forgotten everything."""
    import time

    from natlink.portmap.reconcile import load_owned, save_owned

    owned = load_owned(store)
    now = time.time()
    due = {name: dataclasses.replace(rec, renew_at=now) for name, rec in owned.items() if rec.renew_at is not None
           or rec.via in ("natpmp", "pcp")}
    if due:
        save_owned(store, {**owned, **due})
    return len(due)


def unmap_all(cfg: Config, store: StateStore) -> list[Any]:
    """Remove natlink's own mappings (only those it made for this host); -> list[Action(.ok, .name, .error)]."""
    from natlink.portmap.reconcile import unmap

    return list(unmap(cfg, store, None))


def detect(cfg: Config, router: Any = None) -> Any:
    """-> PublicIpReport(public_ipv4, public_ipv6, router_wan_ipv4, verdict, problem, ...)."""
    from natlink.publicip import detect as _detect

    return _detect(cfg, router=router)


def update_ddns(cfg: Config, store: StateStore, report: Any, names: list[str] | None) -> list[Any]:
    """-> list[EntryResult(name, action, outcome, fatal, message)]; providers are contacted only on change."""
    from natlink.ddns.updater import update_all

    return list(update_all(cfg, store, report, force=False, names=names))


def probe(cfg: Config, store: StateStore, report: Any) -> list[Any]:
    """-> list[ProbeResult(name, target, family, verdict, detail, elapsed, .ok)]; saved as state key "probe"."""
    from natlink.probe.prober import probe_all, results_to_state

    results = list(probe_all(cfg, targets=None, report=report))
    store.save("probe", results_to_state(results))
    return results


def to_json(obj: Any) -> Any:
    """A capability result as JSON data (they all offer .to_json())."""
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return obj
