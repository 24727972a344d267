"""The demo's first links, run in-process inside the LAN host exactly as `natlink map` / `ddns` / `probe` run
them: find the router, judge the WAN address, create the mappings, publish DNS, probe from outside.
A mixin of Story (natlink/demo/story.py), which holds the sandbox and what each link found."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from natlink.config import MappingCfg
from natlink.demo.render import FAILED, OK, SKIPPED, StepResult, fmt_time
from natlink.demo.sandbox import wait_until
from natlink.durations import plain_duration
from natlink.errors import NatlinkError

log = logging.getLogger("natlink.demo.story")


@dataclass
class Mapped:
    """A TCP mapping natlink created in the sandbox: what the outside checks dial."""

    cfg: MappingCfg
    external_port: int

    def describe(self, lan_ip: str) -> str:
        return f"{self.cfg.protocol.upper()} {self.external_port} → {self.cfg.internal_ip or lan_ip}:{self.cfg.internal_port}"


def one_line(exc: BaseException) -> str:
    """A failed step's detail: what went wrong, without a class name unless it is a bug (not natlink's or
    the lab's own error)."""
    from natlink.lab.errors import LabError

    if isinstance(exc, (NatlinkError, LabError)):
        return str(exc).splitlines()[0] if str(exc) else "failed"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ChainLinks:
    """Story's in-process links; each returns its StepResult(s) and leaves what it found on the story."""

    sb: Any
    cfg: Any
    store: Any
    router: Any
    ip_report: Any
    mapped: list[Mapped]
    published: list[str]
    lab: Any

    def find_router(self) -> StepResult:
        from natlink.portmap.base import MAPPER_LABELS
        from natlink.portmap.router import open_router

        assert self.sb is not None and self.cfg is not None
        started = time.monotonic()
        self.router = self.sb.in_lan(open_router, self.cfg.router, self.store)
        elapsed = time.monotonic() - started
        r = self.router
        also = [f"{MAPPER_LABELS[p.mapper]} {fmt_time(p.elapsed)}" for p in r.probes if p.ok and p.mapper != r.mapper]
        where = r.igd_url or r.gateway
        # what discovery did not hear within its window is said as such, never as "no answer"
        unheard = [f"{MAPPER_LABELS[p.mapper]}: {p.detail}" for p in r.probes if not p.ok]
        detail = f"{r.label} at {where}" + (f" (also answered: {', '.join(also)})" if also else "") + \
            (f"; {'; '.join(unheard)}" if unheard else "")
        return StepResult("router", "router found", detail=detail, elapsed=elapsed,
                          data={"protocol": r.mapper, "gateway": r.gateway,
                                "probes": [p.to_json() for p in r.probes]})

    def wan_address(self) -> StepResult:
        from natlink.publicip import detect

        assert self.sb is not None
        started = time.monotonic()
        rep = self.ip_report = self.sb.in_lan(detect, self.cfg, router=self.router)
        elapsed = time.monotonic() - started
        data = {"verdict": rep.verdict, "public_ipv4": rep.public_ipv4, "router_wan_ipv4": rep.router_wan_ipv4}
        if rep.verdict == "public" and rep.public_ipv4:
            return StepResult("wan", "WAN address public", detail=f"{rep.public_ipv4}, reported by the router "
                              "(not carrier-grade NAT, not behind another router)", elapsed=elapsed, data=data)
        return StepResult("wan", "WAN address public", FAILED, f"verdict {rep.verdict}: {rep.problem or 'no address'}",
                          elapsed=elapsed, data=data)

    def create_mappings(self) -> list[StepResult]:
        from natlink.portmap.reconcile import reconcile

        assert self.sb is not None and self.cfg is not None
        lan_ip = self.lab.lan_ip
        if not self.cfg.mappings:
            return [StepResult("mapping", "mapping", SKIPPED, "no [[mapping]] in the config")]
        report = self.sb.in_lan(reconcile, self.cfg, self.store, router=self.router)
        if report.wan_problem:
            return [StepResult("mapping", "mapping created", FAILED, report.wan_problem, elapsed=report.elapsed)]
        results = []
        single = len(report.actions) == 1
        for a in report.actions:
            m = self.cfg.mapping(a.name)
            if m is None:
                continue
            port = a.external_port or m.external_port
            what = f"{m.protocol.upper()} {port} → {m.internal_ip or lan_ip}:{m.internal_port}"
            elapsed = report.elapsed if single else a.elapsed
            data = {"action": a.action, "external_port": port, "internal": f"{m.internal_ip}:{m.internal_port}",
                    "lease": a.lease}
            if a.ok:
                if m.protocol == "tcp":
                    self.mapped.append(Mapped(m, port))
                lease = "permanent" if a.lease == 0 else f"lease {plain_duration(a.lease)}" if a.lease else ""
                detail = f"{what} on the router ({self.router.label}{', ' + lease if lease else ''})"
                results.append(StepResult("mapping", "mapping created", detail=detail, elapsed=elapsed,
                                          subject=m.name, data=data))
            else:
                why = one_line(a.error) if a.error else a.detail
                fix = f" — {a.error.fix}" if a.error and a.error.fix and a.error.fix not in why else ""
                results.append(StepResult("mapping", "mapping created", FAILED, f"{what}: {why}{fix}",
                                          elapsed=elapsed, subject=m.name, data=data))
        return results

    def publish(self) -> list[StepResult]:
        from natlink.ddns.updater import update_all

        assert self.sb is not None and self.cfg is not None
        if not self.cfg.ddns:
            return [StepResult("ddns", "DDNS", SKIPPED, "no [[ddns]] entry in the config")]
        results = []
        for entry in self.cfg.ddns:
            started = time.monotonic()
            [r] = self.sb.in_lan(update_all, self.cfg, self.store, self.ip_report, names=[entry.name])
            if r.failed:
                results.append(StepResult("ddns", "DDNS name published", FAILED, r.message, subject=entry.name,
                                          elapsed=time.monotonic() - started))
                continue
            ip = self.ip_report.public_ipv4
            seen = {h: wait_until(lambda h=h: self.sb.resolve(h), lambda v: v == [ip], 1.0) for h in entry.hostnames}
            elapsed = time.monotonic() - started
            wrong = {h: w.last for h, w in seen.items() if not w.ok}
            names = ", ".join(entry.hostnames)
            data = {"hostnames": list(entry.hostnames), "address": ip, "outcome": r.outcome}
            if wrong:
                results.append(StepResult("ddns", "DDNS name published", FAILED, f"{names} updated, but the DNS server "
                                          f"answers {wrong}", subject=entry.name, elapsed=elapsed, data=data))
                continue
            self.published.extend(entry.hostnames)
            results.append(StepResult("ddns", "DDNS name published",
                                      detail=f"{names} → {ip} sent by RFC 2136 (TSIG) to knot on "
                                             f"{self.lab.dns_server}, and resolved from the internet host",
                                      subject=entry.name, elapsed=elapsed, data=data))
        return results

    def probe(self) -> list[StepResult]:
        from natlink.probe.prober import probe_all

        assert self.sb is not None and self.cfg is not None
        if not self.cfg.probes:
            return [StepResult("reach", "reachable from outside", SKIPPED, "no TCP mapping to check")]
        started = time.monotonic()
        results = self.sb.in_lan(probe_all, self.cfg, report=self.ip_report)
        elapsed = time.monotonic() - started
        out = []
        for r in results:
            where = f"outside TCP connect from the reflector on {self.lab.wan_host_ip}"
            out.append(StepResult("reach", "reachable from outside", OK if r.ok else FAILED,
                                  f"{where}: {r.detail}", elapsed=r.elapsed if len(results) > 1 else elapsed,
                                  subject=r.name, data={"verdict": r.verdict.value, "target": r.target}))
        return out

    def close_router(self) -> None:
        if self.router is not None and self.sb is not None:
            try:
                self.sb.in_lan(self.router.close)
            except Exception as exc:
                log.debug("closing the router: %s", exc)
            self.router = None
