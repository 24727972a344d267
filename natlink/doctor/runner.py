"""Run every check, concurrently where independent, and hand the results to the chain.

Independent from the start: LAN address, host limits, local services, ISP port list, the reflector's view.
The router is used from one thread only (open → WAN/public IP → table → probe), since protocol clients are
not thread-safe; DNS waits for the public IP and then runs beside the probe.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from natlink.config import Config
from natlink.doctor import checks_dns, checks_host, checks_lan, checks_ports, checks_reach, checks_router
from natlink.doctor.model import CheckResult, fail, ok, skipped, warn
from natlink.doctor.nat_timeout import NatTimeout
from natlink.doctor.stream import LinkStream
from natlink.state import StateStore, store_for

log = logging.getLogger(__name__)

STATE_KEY = "doctor"


def config_ok(cfg: Config) -> CheckResult:
    if cfg.path is None:
        return ok(1, "config", f"no config file: the defaults (lan_ip {cfg.router.lan_ip}, protocols "
                               f"{', '.join(cfg.router.protocols)}, no mappings); `natlink init` writes one")
    return ok(1, "config", f"config {cfg.path} is valid: {len(cfg.mappings)} mapping(s), {len(cfg.ddns)} DDNS entr"
                           f"{'y' if len(cfg.ddns) == 1 else 'ies'}, {len(cfg.probes)} probe(s)")


def config_failed(message: str, hint: str) -> CheckResult:
    return fail(1, "config", f"the config is not valid: {message}", hint or "fix the config (natlink check-config)",
                cause="config")


def nat_timeout_check(m: NatTimeout) -> CheckResult:
    data = m.to_json()
    if m.estimate is None:
        return ok(9, "nat-timeout", f"{m.summary()}; keepalives every {m.recommended} s are safe", data=data,
                  elapsed=m.elapsed)
    return warn(9, "nat-timeout", f"{m.summary()}: idle connections die silently after that",
                f"send a keepalive or heartbeat every {m.recommended} s (below the measured "
                f"{m.alive_max or m.dead_min:.0f} s): net.ipv4.tcp_keepalive_time={m.recommended} for sockets with "
                "SO_KEEPALIVE, or the application's keepalive setting", cause="nat-timeout", data=data,
                elapsed=m.elapsed)


def stored_nat_timeout(store: StateStore) -> float | None:
    doc = store.load(STATE_KEY, {}) or {}
    value = (doc.get("nat_timeout") or {}).get("estimate") if isinstance(doc, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def save_nat_timeout(store: StateStore, m: NatTimeout) -> None:
    doc = store.load(STATE_KEY, {}) or {}
    doc["nat_timeout"] = m.to_json() | {"measured_at": time.time()}
    store.save(STATE_KEY, doc)


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    started = time.monotonic()
    return fn(*args), time.monotonic() - started


def _router_chain(cfg: Config, store: StateStore, lan_ip_f: Any, seen_f: Any, pool: ThreadPoolExecutor,
                  hairpin: bool, stream: LinkStream) -> list[CheckResult]:
    """Links 2, 3, 4, 7, 8: everything that needs the router or the public IP."""
    out: list[CheckResult] = []
    # One router session for links 2-8: discovered once, the table read over UPnP whenever UPnP answered.
    router, error, hint, elapsed = checks_router.open_router_timed(cfg, store)
    out.append(checks_router.router_check(router.router() if router else None, error, elapsed, hint))
    stream.add(out[-1:], complete=(2,))
    try:
        report = None
        wan_error = error
        started = time.monotonic()
        try:
            report = checks_router.detect_public_ip(cfg, router, seen_f.result())
        except Exception as exc:  # noqa: BLE001 - shown as the finding, never a traceback
            log.debug("public IP detection", exc_info=True)
            wan_error = str(exc)
        wan_elapsed = time.monotonic() - started
        router_wan = getattr(report, "router_wan_ipv4", None)
        out.append(checks_router.wan_check(report, router_wan, seen_f.result(), wan_elapsed, wan_error))
        stream.add(out[-1:], complete=(3,))
        public_ip = getattr(report, "public_ipv4", None)
        dns_f = pool.submit(checks_dns.dns_checks, cfg, public_ip)
        lan_ip = lan_ip_f.result()
        if router is None:
            mapping_results = [skipped(4, "mapping", f"{m.name}: no router to ask", "fix link 2", subject=m.name,
                                       cause="no-router") for m in cfg.mappings]
        else:
            started = time.monotonic()
            try:
                table = router.table()
            except Exception:  # noqa: BLE001 - the mappings are then unverified, said so
                log.debug("router table", exc_info=True)
                table = None
            mappings = checks_router.mapping_checks(cfg.mappings, table, router.router().lan_ip or lan_ip,
                                                    store.load("mappings", {}) if table is None else None,
                                                    router.mapper)
            elapsed = time.monotonic() - started
            mapping_results = [CheckResult(**{**r.__dict__, "elapsed": elapsed}) for r in mappings]
        reach: list[CheckResult] = []
        if report is None:
            reach.append(skipped(8, "probe", "not run: the public IP is unknown", "fix links 2 and 3"))
        else:
            started = time.monotonic()
            try:
                reach += checks_reach.reach_checks(cfg, report, router, hairpin=hairpin)
            except Exception as exc:  # noqa: BLE001
                log.debug("probe", exc_info=True)
                reach.append(fail(8, "probe", f"the probe could not run: {getattr(exc, 'message', None) or exc}",
                                  getattr(exc, "hint", "") or "check the [[probe]] settings", cause="checker-error",
                                  elapsed=time.monotonic() - started))
        settled = checks_router.settle_unverified(mapping_results, reach) + reach
        stream.add(settled, complete=(4, 8))
        dns = dns_f.result()
        stream.add(dns, complete=(7,))
        out += settled + dns
    finally:
        if router is not None:
            router.close()
    return out


def run_checks(cfg: Config, *, nat_timeout: NatTimeout | None = None, hairpin: bool = True,
               stream: LinkStream | None = None) -> list[CheckResult]:
    """Every check; with ``stream``, each link is also handed on as soon as it (and those before it) finished."""
    stream = stream or LinkStream(lambda link, results: None)
    store = store_for(cfg)
    known_timeout = nat_timeout.estimate if nat_timeout is not None else stored_nat_timeout(store)
    results: list[CheckResult] = [config_ok(cfg)]
    stream.add(results)
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="doctor")
    try:
        lan_f = pool.submit(_timed, checks_lan.gather_lan_evidence, cfg.router.lan_ip, cfg.router.gateway)
        host_f = pool.submit(checks_host.gather_host_facts)
        seen_f = pool.submit(checks_router.reflector_seen_address, cfg)
        lan_ip_f = pool.submit(lambda: lan_f.result()[0].lan_ip)
        services_f = pool.submit(lambda: checks_ports.service_checks(cfg.mappings, lan_ip_f.result()))
        router_f = pool.submit(_router_chain, cfg, store, lan_ip_f, seen_f, pool, hairpin, stream)
        evidence, lan_elapsed = lan_f.result()
        lan = checks_lan.lan_ip_check(evidence)
        results.append(CheckResult(**{**lan.__dict__, "elapsed": lan_elapsed}))
        stream.add(results[-1:], complete=(1,))
        blocked = checks_ports.blocked_port_checks(cfg.mappings)
        stream.add(blocked, complete=(6,))
        services = services_f.result()
        stream.add(services, complete=(5,))
        host = checks_host.host_checks(host_f.result(), cfg.doctor.expected_connections, known_timeout)
        if nat_timeout is not None:
            host.append(nat_timeout_check(nat_timeout))
        stream.add(host, complete=(9,))
        results += blocked + host + services + router_f.result()
        from natlink.doctor.checks_ipv6 import ipv6_checks, reuse_probes

        # after link 8, whose IPv6 probe it reuses (or dials then): the two dial-backs never overlap
        ipv6 = ipv6_checks(cfg, store, dial=reuse_probes(results))
        stream.add(ipv6, complete=(10,))
        results += ipv6
    except BaseException:
        # Ctrl-C: do not join checks stuck in a router or DNS timeout (the caller leaves at once)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    stream.finish()
    return results
