"""The demo's story: build the sandbox, walk natlink's chain in it link by link (each measured), start the
real service, then change the ISP address and reboot the router and measure natlink following and repairing.

natlink's code runs inside the LAN host: the first links in-process (`lab.call("lan", ...)`, exactly the
calls `natlink map` / `ddns` / `probe` make), the rest as `natlink run` in that namespace. Every check of the
outcome is made from the outside: DNS asked from the internet host, TCP connects from the internet host.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from natlink.config import Config, MappingCfg, load_config
from natlink.errors import NatlinkError
from natlink.output import Output
from natlink.state import StateStore

from natlink.durations import plain_duration
from natlink.demo.render import FAILED, OK, SKIPPED, Printer, StepResult, fmt_time
from natlink.demo.sandbox import DemoError, Sandbox, natlink_argv, wait_until
from natlink.demo.sandboxcfg import SandboxConfig, SandboxFacts, default_config, user_config, user_zones

log = logging.getLogger(__name__)

NEW_WAN_IP = "11.0.0.3"  # what the "ISP" hands out on reconnect (same non-reserved sandbox subnet)
FOLLOW_TIMEOUT = 6.0  # how long natlink gets to follow an address change / repair a reboot
EXIT_INTERRUPTED = 130


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


@dataclass
class Story:
    out: Output
    user_cfg: Config | None = None
    keep: bool = False
    new_wan_ip: str = NEW_WAN_IP
    printer: Printer = field(init=False)
    results: list[StepResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sb: Sandbox | None = None
    cfg: Config | None = None
    store: StateStore | None = None
    router: Any = None
    ip_report: Any = None
    mapped: list[Mapped] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    kept_info: dict[str, Any] | None = None
    service_up: bool = False
    pids: dict[str, int] = field(default_factory=dict)  # every process the sandbox ran (the tests check they end)

    def __post_init__(self) -> None:
        self.printer = Printer(self.out)

    # ------------------------------------------------------------------ plumbing

    def record(self, result: StepResult) -> StepResult:
        self.results.append(result)
        self.printer.step(result)
        return result

    def attempt(self, key: str, title: str, fn: Callable[[], StepResult | list[StepResult]]) -> bool:
        """Run one link, time it, print it; a failure is a failed line, never a traceback. True if all ok."""
        started = time.monotonic()
        try:
            produced = fn()
        except (KeyboardInterrupt, SystemExit, BrokenPipeError):  # the reader of our output went away: stop
            raise
        except Exception as exc:  # natlink's, the lab's, or a bug: the story goes on to the teardown
            log.debug("step %s", key, exc_info=True)
            produced = StepResult(key, title, FAILED, one_line(exc))
        items = produced if isinstance(produced, list) else [produced]
        for r in items:
            if r.elapsed is None:
                r.elapsed = time.monotonic() - started
            self.record(r)
            if r.status == FAILED and key in ("service", "ip-change", "reboot") and self.sb is not None:
                tail = self.sb.log_tail("service", 4)
                if tail:
                    self.printer.note("service log: " + " | ".join(tail.splitlines()))
        return all(r.ok for r in items) and bool(items)

    def skip(self, key: str, title: str, why: str) -> None:
        self.record(StepResult(key, title, SKIPPED, why))

    @property
    def lab(self) -> Any:
        assert self.sb is not None
        return self.sb.lab

    def note_pids(self) -> None:
        assert self.sb is not None
        for name, proc in self.sb.procs.items():
            self.pids[name] = proc.pid
        for name, pid in (("miniupnpd", self.lab.miniupnpd_pid), ("knotd", self.lab.knot_pid)):
            if pid:
                self.pids[name if name not in self.pids or self.pids[name] == pid else f"{name}-after-reboot"] = pid

    # ------------------------------------------------------------------ the story

    def run(self) -> int:
        started = time.monotonic()
        interrupted = False
        signal_code = EXIT_INTERRUPTED
        title = "natlink demo — the whole chain on a simulated home network"
        if self.user_cfg is not None:
            title += f", with your config {self.user_cfg.path}"
        self.printer.line(title)
        try:
            self.chain()
        except KeyboardInterrupt:
            interrupted = True
        except SystemExit as exc:  # SIGTERM / SIGHUP (see _exit_on_hangup_or_term)
            interrupted = True
            signal_code = exc.code if isinstance(exc.code, int) else EXIT_INTERRUPTED
        finally:
            if self.sb is not None:
                if self.keep and not interrupted and self.lab.workdir:
                    self.attempt("keep", "sandbox kept", self.keep_sandbox)
                else:
                    self.attempt("teardown", "teardown", self.teardown)
        total = time.monotonic() - started
        if self.kept_info:
            self.printer.kept(self.kept_info)
        self.printer.summary(self.results, total, interrupted)
        if not interrupted:
            self.printer.next_steps()
        code = signal_code if interrupted else (0 if all(r.ok for r in self.results) else 1)
        self.printer.json({
            "ok": code == 0, "exit_code": code, "interrupted": interrupted, "total": round(total, 4),
            "config": str(self.user_cfg.path) if self.user_cfg is not None else None,
            "sandbox": self.sandbox_json(), "notes": self.notes, "steps": [r.to_json() for r in self.results],
            "kept": self.kept_info})
        return code

    def chain(self) -> None:
        if not self.attempt("sandbox", "sandbox up", self.build):
            return
        for note in self.notes:
            self.printer.note(note)
        if not self.attempt("router", "router found", self.find_router):
            for key, title in (("wan", "WAN address"), ("mapping", "mapping"), ("ddns", "DDNS"),
                               ("reach", "reachable from outside"), ("service", "service"),
                               ("ip-change", "ISP address change"), ("reboot", "router reboot")):
                self.skip(key, title, "no router")
            return
        self.attempt("wan", "WAN address public", self.wan_address)
        self.attempt("mapping", "mapping created", self.create_mappings)
        self.attempt("ddns", "DDNS name published", self.publish)
        self.attempt("reach", "reachable from outside", self.probe)
        self.close_router()
        if not self.attempt("service", "natlink run started", self.start_service) and not self.service_up:
            self.skip("ip-change", "ISP address change", "the service is not running")
            self.skip("reboot", "router reboot", "the service is not running")
            return
        self.attempt("ip-change", "ISP address change followed", self.address_change)
        self.attempt("reboot", "router reboot repaired", self.router_reboot)

    # ------------------------------------------------------------------ links

    def build(self) -> StepResult:
        from natlink.lab import Lab

        zones = user_zones(self.user_cfg) if self.user_cfg is not None else []
        self.sb = Sandbox(Lab(lan2=False, zones=zones))  # assigned before start: Ctrl-C mid-start still tears down
        lab = self.lab
        lab.start()
        facts = SandboxFacts(lan_ip=lab.lan_ip, gateway=lab.gateway, dns_server=lab.dns_server, zone=lab.zone,
                             tsig_key_file=lab.tsig_key_file, reflector_url=self.sb.reflector_url,
                             state_dir=self.sb.state_dir)
        sconf: SandboxConfig = user_config(self.user_cfg, facts) if self.user_cfg is not None else default_config(facts)
        self.notes = sconf.notes
        path = self.sb.write_config(sconf.text)
        self.cfg = load_config(str(path))  # natlink's own validation of what the sandbox runs
        self.store = StateStore(self.cfg.service.state_dir)
        ports = sconf.tcp_ports()
        self.sb.start_helpers(ports)
        self.note_pids()
        services = f"test service on {', '.join(map(str, ports))}" if ports else "no TCP service"
        return StepResult("sandbox", "sandbox up",
                          detail=f"lab {lab.tag}: LAN host {lab.lan_ip} ({services}) · router {lab.gateway} with WAN "
                                 f"{lab.wan_ip} (miniupnpd: UPnP IGD, NAT-PMP, PCP; nftables NAT) · internet host "
                                 f"{lab.wan_host_ip} (knot DNS for {', '.join((lab.zone, *lab.extra_zones))}; "
                                 f"natlink reflector :{self.sb.reflector_url.rsplit(':', 1)[1]})",
                          data={"tag": lab.tag, "namespaces": [lab.ns(h) for h in lab.hosts]})

    def find_router(self) -> StepResult:
        from natlink.portmap.router import LABELS, open_router

        assert self.sb is not None and self.cfg is not None
        started = time.monotonic()
        self.router = self.sb.in_lan(open_router, self.cfg.router, self.store)
        elapsed = time.monotonic() - started
        r = self.router
        also = [f"{LABELS[p.protocol]} {fmt_time(p.elapsed)}" for p in r.probes if p.ok and p.protocol != r.protocol]
        where = r.igd_url or r.gateway
        # what discovery did not hear within its window is said as such, never as "no answer"
        unheard = [f"{LABELS[p.protocol]}: {p.detail}" for p in r.probes if not p.ok]
        detail = f"{r.label} at {where}" + (f" (also answered: {', '.join(also)})" if also else "") + \
            (f"; {'; '.join(unheard)}" if unheard else "")
        return StepResult("router", "router found", detail=detail, elapsed=elapsed,
                          data={"protocol": r.protocol, "gateway": r.gateway,
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

    def health(self) -> dict[str, Any]:
        assert self.store is not None
        return self.store.load("service", {}) or {}

    def start_service(self) -> StepResult:
        assert self.sb is not None
        started = time.monotonic()
        ready = self.sb.start_service()
        self.note_pids()

        def first_round(doc: dict[str, Any]) -> bool:
            jobs = doc.get("jobs") or {}
            return all((jobs.get(j) or {}).get("runs", 0) >= 1 for j in ("mappings", "public_ip", "ddns"))

        waited = wait_until(self.health, first_round, 5.0, 0.01)
        self.service_up = waited.ok  # running, even if its first round failed (later steps still apply)
        if not waited.ok:
            raise DemoError("natlink run started but did not finish its first round within 5 s")
        jobs = waited.last["jobs"]
        outcome = ", ".join(f"{j} {jobs[j].get('last_outcome')}" for j in ("mappings", "ddns"))
        failed = [j for j in ("mappings", "public_ip", "ddns") if (jobs.get(j) or {}).get("failures")]
        if failed:  # started, but its first round did not work: never a ✓
            errors = "; ".join(f"{j}: {jobs[j].get('last_error') or 'failed'}" for j in failed)
            return StepResult("service", "natlink run started", FAILED,
                              f"the real service (pid {self.sb.service_pid}) runs, but its first round failed: "
                              f"{errors}", elapsed=time.monotonic() - started,
                              data={"pid": self.sb.service_pid, "ready": round(ready, 4)})
        return StepResult("service", "natlink run started",
                          detail=f"the real service (pid {self.sb.service_pid}) on the LAN host, ready in "
                                 f"{fmt_time(ready)}; first round: {outcome}; listening for the router's "
                                 "announcements", elapsed=time.monotonic() - started,
                          data={"pid": self.sb.service_pid, "ready": round(ready, 4)})

    def _mapping_runs(self) -> int:
        return int(((self.health().get("jobs") or {}).get("mappings") or {}).get("runs", 0))

    def _announcements(self) -> int:
        return int((self.health().get("counters") or {}).get("event:announce", 0))

    def address_change(self) -> StepResult:
        assert self.sb is not None
        sb, lab = self.sb, self.lab
        old, new = lab.wan_ip, self.new_wan_ip
        heard_before = self._announcements()
        started = time.monotonic()
        lab.ip_change(new)
        parts, failed = [], []
        data: dict[str, Any] = {"old": old, "new": new, "dns": [], "connects": []}
        # The service's own view first: its router poll (saved in its health state) sees the new address.
        w = wait_until(lambda: (self.health().get("router") or {}).get("external_ip"), lambda v: v == new,
                       FOLLOW_TIMEOUT)
        took = time.monotonic() - started
        data["service_saw"] = round(took, 4)
        if w.ok:
            parts.append(f"saw {new} in {fmt_time(took)}")
        else:
            failed.append(f"the service still reports {w.last or 'no address'}")
        for h in self.published:
            w = wait_until(lambda h=h: sb.resolve(h), lambda v: v == [new], FOLLOW_TIMEOUT - (time.monotonic() - started))
            took = time.monotonic() - started
            data["dns"].append({"hostname": h, "ok": w.ok, "elapsed": round(took, 4)})
            if w.ok:
                parts.append(f"updated {h} → {new} in {fmt_time(took)}")
            else:
                failed.append(f"{h} still resolves to {', '.join(w.last) if isinstance(w.last, list) else w.last}")
        for m in self.mapped:
            w = wait_until(lambda m=m: sb.connect_from_outside(new, m.external_port), bool,
                           max(0.5, FOLLOW_TIMEOUT - (time.monotonic() - started)))
            took = time.monotonic() - started
            data["connects"].append({"external_port": m.external_port, "ok": w.ok, "elapsed": round(took, 4)})
            if w.ok:
                parts.append(f"{new}:{m.external_port} answers from outside ({fmt_time(took)})")
            else:
                failed.append(f"{new}:{m.external_port} not reachable from outside ({one_line(w.last)})")
        elapsed = time.monotonic() - started
        # The service saves its counters after the job that the event triggered: give it a moment.
        heard = wait_until(self._announcements, lambda n: n > heard_before, 1.0, 0.01).ok
        how = "heard the router's announcement and " if heard else ""
        data["announcement_heard"] = bool(how)
        head = f"the ISP changed the WAN address {old} → {new}; natlink {how}"
        if failed:
            return StepResult("ip-change", "ISP address change followed", FAILED,
                              f"the ISP changed the WAN address {old} → {new}; after {fmt_time(elapsed)}: "
                              + "; ".join(failed), elapsed=elapsed, data=data)
        return StepResult("ip-change", "ISP address change followed", detail=head + "; ".join(parts),
                          elapsed=elapsed, data=data)

    def router_reboot(self) -> StepResult:
        assert self.sb is not None
        sb, lab = self.sb, self.lab
        if not self.mapped:
            return StepResult("reboot", "router reboot", SKIPPED, "no TCP mapping to repair")
        gone: dict[int, str] = {}

        def while_down() -> None:  # the reboot really lost the mappings: nothing answers from outside
            for m in self.mapped:
                try:
                    sb.connect_from_outside(lab.wan_ip, m.external_port, 0.3)
                    gone[m.external_port] = "still answered"
                except OSError as exc:
                    gone[m.external_port] = "refused" if isinstance(exc, ConnectionRefusedError) else one_line(exc)

        runs_before = self._mapping_runs()
        started = time.monotonic()
        lab.router_reboot(while_down=while_down)
        up = time.monotonic()
        self.note_pids()
        repaired, failed = [], []
        for m in self.mapped:
            w = wait_until(lambda m=m: sb.connect_from_outside(lab.wan_ip, m.external_port), bool,
                           max(0.5, FOLLOW_TIMEOUT - (time.monotonic() - up)))
            if w.ok:
                repaired.append(m)
            else:
                failed.append(f"{lab.wan_ip}:{m.external_port} still not reachable ({one_line(w.last)})")
        elapsed = time.monotonic() - started
        after_up = time.monotonic() - up
        runs_after = wait_until(self._mapping_runs, lambda n: n > runs_before, 2.0, 0.01).last
        down = ", ".join(f"{lab.wan_ip}:{p} {v}" for p, v in gone.items())
        data = {"while_down": [{"external_port": int(p), "verdict": v} for p, v in gone.items()],
                "after_router_up": round(after_up, 4),
                "service_mapping_runs": runs_after - runs_before}
        if failed:
            return StepResult("reboot", "router reboot repaired", FAILED,
                              f"the router rebooted and forgot its mappings ({down}); " + "; ".join(failed),
                              elapsed=elapsed, data=data)
        what = ", ".join(m.describe(lab.lan_ip) for m in repaired)
        return StepResult("reboot", "router reboot repaired",
                          detail=f"the router rebooted and forgot its mappings (outside connect: {down}); natlink "
                                 f"re-created {what} {fmt_time(after_up)} after the router answered again, and the "
                                 "outside connect works", elapsed=elapsed, data=data)

    # ------------------------------------------------------------------ the end

    def teardown(self) -> StepResult:
        from natlink.lab.netns import list_netns
        from natlink.lab.registry import lab_ns_names

        assert self.sb is not None
        self.close_router()
        tag = self.lab.tag
        self.sb.teardown()
        left = sorted(set(lab_ns_names(tag)) & set(list_netns()))
        if left:
            return StepResult("teardown", "teardown", FAILED, f"namespaces left behind: {', '.join(left)}")
        return StepResult("teardown", "teardown", detail="service, daemons and helpers stopped; namespaces and "
                                                         "files removed")

    def keep_sandbox(self) -> StepResult:
        assert self.sb is not None
        self.close_router()
        lab, sb = self.lab, self.sb
        nl = " ".join(natlink_argv())
        hosts = {"lan": (lab.lan_ip, "the LAN host: natlink run, the test service"),
                 "rtr": (lab.gateway, "the router: miniupnpd, nftables NAT"),
                 "wan": (lab.wan_host_ip, "the internet host: knot DNS, natlink reflector")}
        self.kept_info = {
            "tag": lab.tag, "workdir": lab.workdir, "config": str(sb.config_path),
            "service_pid": sb.service_pid, "logs": {n: str(sb.path(f"{n}.log")) for n in sb.procs},
            "hosts": {h: {"address": ip, "namespace": lab.ns(h), "enter": f"sudo ip netns exec {lab.ns(h)} bash",
                          "what": what} for h, (ip, what) in hosts.items()},
            "try": [f"sudo ip netns exec {lab.ns('lan')} {nl} -c {sb.config_path} status",
                    f"sudo ip netns exec {lab.ns('lan')} {nl} -c {sb.config_path} mappings",
                    f"sudo ip netns exec {lab.ns('wan')} kdig @{lab.dns_server} "
                    f"{(self.published or [lab.zone])[0]} A +short"],
            "down": f"sudo {nl} demo --down",
        }
        sb.keep(self.kept_info)
        return StepResult("keep", "sandbox kept", detail=f"lab {lab.tag} stays up; natlink run keeps running in it")

    def sandbox_json(self) -> dict[str, Any] | None:
        if self.sb is None or not self.lab.workdir:
            return None
        lab = self.lab
        return {"tag": lab.tag, "lan": lab.lan_ip, "gateway": lab.gateway, "wan_ip": lab.wan_ip,
                "internet_host": lab.wan_host_ip, "dns_zones": [lab.zone, *lab.extra_zones],
                "reflector": self.sb.reflector_url, "pids": self.pids}
