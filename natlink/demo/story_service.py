"""The demo's service links: start the real `natlink run` in the LAN host, then change the ISP address and
reboot the router, and measure from outside how natlink follows and repairs. A mixin of Story."""

from __future__ import annotations

import time
from typing import Any

from natlink.demo.render import FAILED, SKIPPED, StepResult, fmt_time
from natlink.demo.sandbox import DemoError, wait_until
from natlink.demo.story_links import Mapped, one_line

FOLLOW_TIMEOUT = 6.0  # how long natlink gets to follow an address change / repair a reboot


class ServiceLinks:
    """Story's links that run against the real service; Story owns the sandbox and the state store."""

    sb: Any
    store: Any
    mapped: list[Mapped]
    published: list[str]
    new_wan_ip: str
    service_up: bool
    lab: Any
    note_pids: Any

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
