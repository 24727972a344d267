"""Links 2–4: the router answers (which protocol, how fast), its WAN address is public and matches what the
outside sees, and every configured mapping is on the router pointing at this host and the right port.

The verdicts are pure functions over what natlink.portmap / natlink.publicip report (table-tested); the
``gather`` helpers at the bottom talk to the router.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from natlink.config import Config, MappingCfg
from natlink.doctor.model import CheckResult, Status, fail, ok, skipped, warn
from natlink.durations import plain_duration
from natlink.netaddr import AddrKind, classify
from natlink.portmap.base import MAPPER_LABELS

log = logging.getLogger(__name__)



# --------------------------------------------------------------------------- link 2


def router_check(router: Any | None, error: str | None, elapsed: float, hint: str | None = None) -> CheckResult:
    """``router``: an open natlink.portmap.router.Router, or None with ``error`` (why none answered) and the
    error's own ``hint``: "no IPv4 default route" is fixed on this host, not in the router's settings."""
    if router is None:
        return fail(2, "router", error or "no router answered",
                    hint or "enable UPnP IGD or NAT-PMP/PCP in the router's settings (often under NAT or Advanced), "
                    "or set router.gateway / router.igd_url", cause="no-router", elapsed=elapsed)
    probes = getattr(router, "probes", []) or []
    answered = [p for p in probes if p.ok]
    others = [f"{MAPPER_LABELS.get(p.mapper, p.mapper)} {p.elapsed * 1000:.0f} ms" for p in answered
              if p.mapper != router.mapper]
    # each mapper as discovery saw it: "no answer within N ms (not waited for longer)" is not "no answer"
    silent = [f"{MAPPER_LABELS.get(p.mapper, p.mapper)}: {p.detail}" for p in probes if not p.ok]
    won = next((p for p in probes if p.mapper == router.mapper), None)
    speed = f" in {won.elapsed * 1000:.0f} ms" if won else ""
    finding = f"{router.describe()} answered{speed}"
    if others:
        finding += f" (also answering: {', '.join(others)})"
    if silent:
        finding += f"; {'; '.join(silent)}"
    ignored = list(getattr(getattr(router, "discovery", None), "ignored", []) or [])
    if ignored:
        finding += f"; ignored SSDP answers from other hosts: {', '.join(ignored)}"
    choice = getattr(router, "wan_service", None)
    if choice is not None and choice.source != "only":  # several WAN connection services: which one and why
        finding += f"; maps on {choice.reason}"
    data = {"protocol": router.mapper, "gateway": router.gateway, "igd_url": router.igd_url,
            "probes": [p.to_json() for p in probes],
            "wan_service": choice.to_json() if choice is not None else None}
    return ok(2, "router", finding, data=data, elapsed=elapsed)


# --------------------------------------------------------------------------- link 3


def wan_check(report: Any | None, router_wan: str | None, reflector_seen: str | None, elapsed: float = 0.0,
              error: str | None = None) -> CheckResult:
    """``report``: natlink.publicip PublicIpReport (verdict public/cgnat/double-nat/unknown)."""
    if report is None:
        return skipped(3, "wan", f"public IP detection did not run: {error or 'no router'}",
                       "fix the router link first", elapsed=elapsed)
    data = {"router_wan": router_wan, "public_ipv4": report.public_ipv4, "verdict": report.verdict,
            "reflector_sees": reflector_seen, "sources": [s.to_json() for s in report.sources]}
    wan_kind = classify(router_wan)
    if report.verdict == "public" and report.public_ipv4 is None and report.problem:
        # The sources disagree (e.g. the router's WAN vs what the reflector sees): nothing is published.
        return fail(3, "wan", report.problem, "find the second NAT or VPN between the router and the internet, "
                    "or drop the echo source that is wrong", cause="wan-mismatch", data=data, elapsed=elapsed)
    if report.verdict == "public":
        seen = f"; the outside sees {report.public_ipv4}" if report.public_ipv4 else ""
        return ok(3, "wan", f"the router's WAN address {router_wan or report.public_ipv4} is public{seen}",
                  data=data, elapsed=elapsed)
    if report.verdict == "cgnat":
        return fail(3, "wan", report.problem or "carrier-grade NAT", "ask your ISP for a public IPv4 address (often "
                    "free or a small fee), or reach the server over IPv6 or a tunnel/VPS", cause="cgnat",
                    data=data, elapsed=elapsed)
    if report.verdict == "double-nat":
        return fail(3, "wan", report.problem or "double NAT", "put the front router in bridge/modem mode, or map the "
                    "port on it as well (to this router's WAN address)", cause="double-nat", data=data, elapsed=elapsed)
    # unknown: a WAN address that is not public, or one that differs from the outside's view
    if wan_kind is AddrKind.PUBLIC and report.public_ipv4 and report.public_ipv4 != router_wan:
        return fail(3, "wan", report.problem or f"the router's WAN {router_wan} differs from the public IP "
                    f"{report.public_ipv4}", "find the second NAT or VPN between the router and the internet",
                    cause="wan-mismatch", data=data, elapsed=elapsed)
    if report.problem:
        return fail(3, "wan", report.problem, "check the router's status page for its WAN address; if it is "
                    "100.64.x.x or private, ask the ISP for a public address", cause="no-wan", data=data,
                    elapsed=elapsed)
    return warn(3, "wan", "the public address is unknown (no source answered)",
                "add an echo URL or a reflector so the outside view can be compared", cause="unknown",
                data=data, elapsed=elapsed)


# --------------------------------------------------------------------------- link 4


def mapping_checks(mappings: tuple[MappingCfg, ...], table: list[Any] | None, lan_ip: str,
                   owned: dict[str, Any] | None = None, mapper: str | None = None) -> list[CheckResult]:
    """PURE: each configured mapping against the router's table read in this run (None: nothing that answered
    can list it). Only an entry seen in that table is ok; natlink's records are never proof."""
    if not mappings:
        return [skipped(4, "mapping", "no [[mapping]] configured", "add a [[mapping]] to the config", cause="not-configured")]
    out = []
    label = MAPPER_LABELS.get(mapper or "", mapper or "the router's protocol")
    for m in mappings:
        want_ip = m.internal_ip or lan_ip
        what = f"{m.name}: {m.protocol.upper()} {m.external_port}"
        data: dict[str, Any] = {"want": {"external_port": m.external_port, "internal": f"{want_ip}:{m.internal_port}"}}
        if table is None:
            held = (owned or {}).get(m.name)
            record = "natlink's record says it was granted, but " if held else "natlink has no record of it, and "
            out.append(warn(4, "mapping", f"{what}: unverified — {record}{label} cannot list the router's table, "
                                          "and the doctor changes nothing (asking for it again would)",
                            "add a [[probe]] for this mapping (a connect from outside proves it), or enable UPnP IGD "
                            "on the router so its table can be read; `natlink map` asks the router again",
                            subject=m.name, cause="unverified", data=data | ({"state": held} if held else {})))
            continue
        entry = next((e for e in table if e.protocol == m.protocol and e.external_port == m.external_port), None)
        if entry is None:
            moved = [e for e in table if e.protocol == m.protocol and e.internal_ip == want_ip
                     and e.internal_port == m.internal_port]
            extra = f" (found {moved[0].protocol.upper()} {moved[0].external_port} → {want_ip}:{m.internal_port} " \
                    "instead)" if moved else ""
            out.append(fail(4, "mapping", f"{what} is not on the router{extra}",
                            "run `natlink map` (or start `natlink run`, which keeps mappings alive)", subject=m.name,
                            cause="missing", data=data | {"table_size": len(table)}))
            continue
        data["router"] = {"internal": f"{entry.internal_ip}:{entry.internal_port}", "lease": entry.lease,
                          "description": entry.description, "enabled": entry.enabled}
        if entry.internal_ip != want_ip:
            out.append(fail(4, "mapping", f"{what} points at another host, {entry.internal_ip}:{entry.internal_port} "
                                          f"(\"{entry.description}\"), not this one ({want_ip})",
                            f"delete that mapping on the router (or from {entry.internal_ip}), then run `natlink map`; "
                            "or use another external port", subject=m.name, cause="other-host", data=data))
        elif entry.internal_port != m.internal_port:
            out.append(fail(4, "mapping", f"{what} reaches port {entry.internal_port}, not {m.internal_port}",
                            "run `natlink map` to replace it", subject=m.name, cause="wrong-port", data=data))
        elif not entry.enabled:
            out.append(fail(4, "mapping", f"{what} is on the router but disabled", "enable it, or run `natlink map`",
                            subject=m.name, cause="disabled", data=data))
        else:
            lease = "permanent" if entry.lease == 0 else "lease unknown" if entry.lease is None else f"{plain_duration(entry.lease)} left"
            out.append(ok(4, "mapping", f"{what} → {entry.internal_ip}:{entry.internal_port} ({lease})",
                          subject=m.name, data=data))
    return out


def settle_unverified(mappings: list[CheckResult], reach: list[CheckResult]) -> list[CheckResult]:
    """PURE: an unverified mapping whose probe or hairpin check failed in the same run is a failure."""
    failed = {r.subject for r in reach if r.status is Status.FAIL and r.subject}
    out = []
    for r in mappings:
        if r.cause == "unverified" and r.subject in failed:
            r = fail(4, "mapping", r.finding.replace(": unverified —", ": not confirmed by the router, and the check "
                                                                  "from outside failed —", 1),
                     "run `natlink map` (it asks the router again), then `natlink doctor`", subject=r.subject,
                     cause="unconfirmed", data=r.data, elapsed=r.elapsed)
        out.append(r)
    return out


# --------------------------------------------------------------------------- I/O edges


def reflector_seen_address(cfg: Config, timeout: float = 2.0) -> str | None:
    """The address the first configured reflector sees us coming from (GET /v1/health), or None."""
    url = next((p.reflector for p in cfg.probes if p.via == "reflector" and p.reflector), None)
    if url is None:
        return None
    from natlink.net.http import HttpClient

    try:
        resp = HttpClient(timeout=timeout, deadline=timeout, max_body=4096).request("GET",
                                                                                  url.rstrip("/") + "/v1/health")
        if resp.status != 200:
            raise ValueError(f"HTTP {resp.status}")
        return json.loads(resp.body).get("address")
    except Exception as exc:  # noqa: BLE001 - any failure means "no outside view"
        log.debug("reflector health: %s", exc)
        return None


def detect_public_ip(cfg: Config, router: Any, reflector_seen: str | None) -> Any:
    """natlink.publicip.detect, with the reflector's view of our address added as one more echo source."""
    from natlink.publicip import detect, judge
    from natlink.publicip.verdict import SourceAnswer

    report = detect(cfg, router=router)
    if reflector_seen is None:
        return report
    url = next(p.reflector for p in cfg.probes if p.via == "reflector" and p.reflector)
    extra = SourceAnswer(f"{url} (reflector)", "echo", 4, address=reflector_seen)
    return judge([*report.sources, extra], report.router_answered, cfg.public_ip.quorum)


def open_router_timed(cfg: Config, store: Any) -> tuple[Any | None, str | None, str | None, float]:
    """(the doctor's RouterSession, already discovered — or None with why and its fix, seconds it took)."""
    from natlink.portmap.base import NoRouter
    from natlink.portmap.session import RouterSession

    started = time.monotonic()
    session = RouterSession.for_config(cfg, store)
    try:
        session.router()
        return session, None, None, time.monotonic() - started
    except Exception as exc:  # noqa: BLE001 - NatlinkError carries the sentence; anything else is still "no router"
        session.close()
        message = getattr(exc, "message", None) or str(exc)
        no_router = isinstance(exc, NoRouter)  # then the router's settings are the fix, else the error's own
        return None, message, None if no_router else (getattr(exc, "hint", None) or None), \
            time.monotonic() - started
