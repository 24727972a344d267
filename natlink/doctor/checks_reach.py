"""Link 8: reachability from outside (natlink.probe's prober, via the reflector) and then hairpin.

As YunoHost's diagnosis does, hairpin (inside → own public address) is tried only after the outside check
and only warns: it tells whether LAN clients can use the public name, never whether the outside gets in.
"""

from __future__ import annotations

import logging
from typing import Any

from natlink.config import Config
from natlink.isp_ports import ISP_BLOCKED
from natlink.doctor.model import CheckResult, fail, ok, skipped, warn

log = logging.getLogger(__name__)

LINK = 8

_FIX = {
    "refused": "the router answered with a reset: check links 4 and 5 (the mapping and the service)",
    "timeout": "nothing answered: the ISP or a firewall drops the port; try a high external port",
    "unreachable": "the path to your public address is broken; check the router's WAN connection",
    "cgnat": "get a public IPv4 address from the ISP, or use IPv6 or a tunnel",
    "checker-error": "the reflector failed: check that `natlink reflector` runs and the token matches",
}


def _subject(cfg: Config, probe_name: str) -> str:
    p = next((p for p in cfg.probes if p.name == probe_name), None)
    return p.mapping if p is not None and p.mapping else probe_name


def probe_check(cfg: Config, r: Any) -> CheckResult:
    """PURE: one natlink.probe TargetVerdict as a chain link (subject = the mapping it probes)."""
    verdict = getattr(r.verdict, "value", str(r.verdict))
    subject = _subject(cfg, r.name)
    data = r.to_json() if hasattr(r, "to_json") else {}
    what = f"{r.name}: {r.target} ({r.family}, via {r.via})"
    if r.ok:
        return ok(LINK, "probe", f"{what} reachable from outside — {r.detail}", subject=subject, data=data,
                  elapsed=r.elapsed)
    finding = f"{what}: {verdict} — {r.detail}"
    fix = _FIX.get(verdict, "see the finding")
    if verdict == "timeout" and r.external_port in ISP_BLOCKED:
        finding = (f"{what}: timeout — no answer at all, which is what an ISP block of inbound port "
                   f"{r.external_port} ({ISP_BLOCKED[r.external_port]}) looks like")
        fix = "use a high external port (link 6); ISPs drop this port before it reaches your router"
    return fail(LINK, "probe", finding, fix, subject=subject, cause=verdict, data=data, elapsed=r.elapsed)


def hairpin_check(name: str, subject: str, public_ip: str, port: int, outcome: Any) -> CheckResult:
    """PURE: the hairpin connect's outcome (natlink.probe.dial.DialOutcome)."""
    data = {"address": public_ip, "port": port, "outcome": outcome.outcome, "error": outcome.error}
    if outcome.outcome == "open":
        return ok(LINK, "hairpin", f"{name}: {public_ip}:{port} also works from inside the LAN (hairpin NAT)",
                  subject=subject, data=data, elapsed=outcome.elapsed)
    return warn(LINK, "hairpin", f"{name}: {public_ip}:{port} does not work from inside the LAN ({outcome.outcome}): "
                                 "the router has no hairpin NAT", "inside the LAN use the LAN address, or a local DNS "
                "override of your DDNS name to it; the outside is not affected", subject=subject, cause="no-hairpin",
                data=data, elapsed=outcome.elapsed)


def reach_checks(cfg: Config, report: Any, router: Any, *, hairpin: bool = True) -> list[CheckResult]:
    if not cfg.probes:
        return [skipped(LINK, "probe", "no [[probe]] configured, so nothing checks from outside",
                        "run `natlink reflector --listen 0.0.0.0:8765` on a machine outside your network and add "
                        "[[probe]] mapping = \"NAME\", reflector = \"http://HOST:8765\"", cause="not-configured")]
    from natlink.probe import hairpin as hairpin_mod
    from natlink.probe.prober import probe_all

    results = probe_all(cfg, report=report, router=router)
    checks = [probe_check(cfg, r) for r in results]
    public_ip = getattr(report, "public_ipv4", None)
    if hairpin and public_ip:
        for r, c in zip(results, checks):
            if r.ok and r.family == "ipv4" and r.protocol == "tcp" and r.via != "hairpin" and r.external_port:
                outcome = hairpin_mod.check(public_ip, r.external_port, "tcp", 1.0)
                checks.append(hairpin_check(r.name, c.subject or r.name, public_ip, r.external_port, outcome))
    return checks
