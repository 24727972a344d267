"""What the jobs saw, turned into alerts of the taxonomy (alerts.EVENTS): a subject is "lost" after a streak of
failures and "restored" when it works again; changes (public IP, IPv6 prefix, NAT verdict) alert once each.
The decisions are policy.streak_step; this module only keeps the streaks and words the alerts."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from natlink.ddns.policy import stopped_hint
from natlink.service.alerts import Alert, Alerter
from natlink.service.policy import Streak, ipv6_prefix, streak_step

HINTS = {
    "mapping": "check that the router is on and UPnP/NAT-PMP is enabled; `natlink doctor` names the broken link",
    "router": "check that the router is on and answers UPnP or NAT-PMP (`natlink ip`)",
    "ddns": "see `natlink status` for the entry's last answer; `natlink ddns -v` shows the exchange",
    "probe": "run `natlink doctor` to find where the path from outside breaks",
}


class Watch:
    def __init__(self, alerter: Alerter) -> None:
        self.alerter = alerter
        self._streaks: dict[str, Streak] = {}
        self._lock = threading.Lock()
        self.stopped: dict[str, str] = {}  # DDNS entry -> why it is stopped (shown by status, kept in health)

    def _step(self, subject: str, ok: bool, threshold: int) -> str | None:
        with self._lock:
            self._streaks[subject], change = streak_step(self._streaks.get(subject, Streak()), ok, threshold)
        return change

    def mappings(self, outcomes: dict[str, str | None], threshold: int = 3) -> None:
        """outcomes: mapping name -> None when it is in place, else why not."""
        for name, problem in sorted(outcomes.items()):
            change = self._step(f"mapping:{name}", problem is None, threshold)
            if change == "lost":
                self.alerter.raise_(Alert("mapping-lost", f"mapping:{name}", f"mapping {name} is not in place: "
                                          f"{problem}", HINTS["mapping"]))
            elif change == "restored":
                self.alerter.raise_(Alert("mapping-restored", f"mapping:{name}", f"mapping {name} is in place again"))

    def router(self, problem: str | None, threshold: int = 3) -> None:
        change = self._step("router", problem is None, threshold)
        if change == "lost":
            self.alerter.raise_(Alert("router-lost", "router", f"the router does not answer: {problem}",
                                      HINTS["router"]))
        elif change == "restored":
            self.alerter.raise_(Alert("router-restored", "router", "the router answers again"))

    def public_ip(self, previous: Any, report: Any) -> None:
        """Compare two PublicIpReports (previous None at start: nothing to compare)."""
        if previous is None:
            return
        old, new = getattr(previous, "public_ipv4", None), getattr(report, "public_ipv4", None)
        if old and new and old != new:
            self.alerter.raise_(Alert("public-ip-changed", "public-ip", f"public IP changed from {old} to {new}",
                                      "nothing to do: DDNS follows it"))
        old6 = ipv6_prefix(getattr(previous, "public_ipv6", None))
        new6 = ipv6_prefix(getattr(report, "public_ipv6", None))
        if old6 and new6 and old6 != new6:
            self.alerter.raise_(Alert("ipv6-prefix-changed", "public-ipv6", f"IPv6 prefix changed from {old6} to "
                                      f"{new6}", "nothing to do: DDNS follows it; firewall rules naming the old "
                                      "prefix need the new one"))
        verdict = getattr(report, "verdict", None)
        if verdict != getattr(previous, "verdict", None) and verdict in ("cgnat", "double-nat"):
            self.alerter.raise_(Alert("behind-nat", "public-ip", f"the router is now behind {verdict}: "
                                      f"{getattr(report, 'problem', '') or 'no public address'}",
                                      "ask the ISP for a public IPv4 address, or use IPv6"))

    def ddns(self, results: Iterable[Any], threshold: int = 3) -> list[str]:
        """-> the transient problems of this round ("name: message"). Stops, recoveries and failure streaks alert."""
        errors: list[str] = []
        for r in results:
            if r.fatal:
                self.stopped[r.name] = r.message
                # Alert when the provider answered so, not for an entry stopped since before (a restart).
                if r.action != "blocked":
                    self.alerter.raise_(Alert("ddns-stopped", f"ddns:{r.name}",
                                              f"{r.provider} answered {r.outcome}: "
                                              f"{r.message.removesuffix(' — ' + stopped_hint(r.name))}",
                                              stopped_hint(r.name)))
                continue
            if r.name in self.stopped and r.kind == "success":
                del self.stopped[r.name]
                self._step(f"ddns:{r.name}", True, threshold)
                self.alerter.raise_(Alert("ddns-recovered", f"ddns:{r.name}", f"{r.name} updates again: {r.message}"))
                continue
            transient = r.kind == "transient" or r.action == "error"
            if transient:
                errors.append(f"{r.name}: {r.message}")
            if r.kind == "none" and not transient:
                continue  # skip/wait/no-ip: nothing was tried, nothing learnt
            change = self._step(f"ddns:{r.name}", not transient, threshold)
            if change == "lost":
                self.alerter.raise_(Alert("ddns-failed", f"ddns:{r.name}", f"{r.name} failed {threshold} times in "
                                          f"a row: {r.message}", HINTS["ddns"]))
            elif change == "restored":
                self.alerter.raise_(Alert("ddns-recovered", f"ddns:{r.name}", f"{r.name} updates again"))
        return errors

    def ddns_round(self, problem: str | None, threshold: int = 3) -> None:
        """The DDNS round as a whole (public IP detection raised): no entry could be tried."""
        change = self._step("ddns", problem is None, threshold)
        if change == "lost":
            self.alerter.raise_(Alert("ddns-failed", "ddns", f"the DDNS round failed {threshold} times in a row: "
                                      f"{problem}", HINTS["ddns"]))
        elif change == "restored":
            self.alerter.raise_(Alert("ddns-recovered", "ddns", "the DDNS round works again"))

    def probes(self, results: Iterable[Any]) -> list[str]:
        """-> "name: verdict" of each failed probe; the first failure and the recovery alert."""
        failed: list[str] = []
        for r in results:
            verdict = getattr(r.verdict, "value", r.verdict)
            subject = f"probe:{r.name}/{r.family}"
            if not r.ok:
                failed.append(f"{r.name}: {verdict}")
            change = self._step(subject, r.ok, 1)
            if change == "lost":
                self.alerter.raise_(Alert("reachability-lost", subject, f"{r.target} is not reachable from outside: "
                                          f"{verdict} ({r.detail})", HINTS["probe"]))
            elif change == "restored":
                self.alerter.raise_(Alert("reachability-restored", subject,
                                          f"{r.target} is reachable from outside again"))
        return failed
