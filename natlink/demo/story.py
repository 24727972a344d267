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

from natlink.config import Config, load_config
from natlink.demo.render import FAILED, SKIPPED, Printer, StepResult
from natlink.demo.sandbox import Sandbox, natlink_argv
from natlink.demo.sandboxcfg import SandboxConfig, SandboxFacts, default_config, user_config, user_zones
from natlink.demo.story_links import ChainLinks, Mapped, one_line
from natlink.demo.story_service import ServiceLinks
from natlink.output import Output
from natlink.state import StateStore

log = logging.getLogger(__name__)

NEW_WAN_IP = "11.0.0.3"  # what the "ISP" hands out on reconnect (same non-reserved sandbox subnet)
EXIT_INTERRUPTED = 130


@dataclass
class Story(ChainLinks, ServiceLinks):
    """One `natlink demo` run: the sandbox, what each link found, the printed and JSON account. The links are in
    story_links.py (in-process) and story_service.py (the real service)."""

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
