"""Link 10: the IPv6 chain beside the IPv4 one — this host's stable global address → the pinhole natlink holds
for it → AAAA = that address → an outside connect over IPv6 (the reflector dials back the IPv6 address it saw).

Only when something asks for IPv6 (a mapping's ipv6, public_ip.ipv6, a [[ddns]] ipv6). The doctor changes
nothing on the router: a pinhole natlink recorded counts as working only when the outside connect came through.
"""

from __future__ import annotations

import time
from typing import Any

from natlink.doctor.checks_dns import lookup
from natlink.doctor.model import CheckResult, fail, ok, skipped, warn
from natlink.ipv6addr import combine
from natlink.portmap.pinhole import current_selection, load_owned

LINK = 10


def wanted(cfg: Any) -> bool:
    return cfg.public_ip.ipv6 or any(cfg.mapping_ipv6(m) for m in cfg.mappings) or any(e.ipv6 for e in cfg.ddns)


def outside(cfg: Any, mapping: Any) -> tuple[str, str] | None:
    """(outcome, address the reflector saw) of one IPv6 dial-back for the mapping's port; None without a
    reflector probe for it."""
    from natlink.probe.targets import probe_secret
    from natlink.probe.reflector_client import PortAsk, ask

    probe = next((p for p in cfg.probes if p.mapping == mapping.name and p.via == "reflector" and p.reflector), None)
    if probe is None:
        return None
    answer = ask(probe.reflector, [PortAsk(mapping.internal_port, mapping.protocol)], dial_timeout=probe.timeout,
                 token=probe_secret(probe), family="ipv6", allow_insecure_http=probe.allow_insecure_http)
    got = answer.get(mapping.internal_port, mapping.protocol)
    return (got.outcome if got else "error"), answer.address


def reuse_probes(results: list[CheckResult]) -> Any:
    """A dial for ipv6_checks that takes link 8's IPv6 probe of the mapping (the prober dials back IPv6 for
    mappings with ipv6), so one doctor run asks the reflector once per family; outside() when link 8 has none."""
    def dial(cfg: Any, mapping: Any) -> tuple[str, str] | None:
        for r in results:
            d = r.data
            if r.link == 8 and r.check == "probe" and d.get("family") == "ipv6" and d.get("mapping") == mapping.name:
                outcome = str(d.get("outcome") or "error")
                return outcome, str(d.get("seen_as") or "") if outcome != "error" else str(d.get("detail") or "")
        return outside(cfg, mapping)
    return dial


def ipv6_checks(cfg: Any, store: Any, *, dial: Any = outside) -> list[CheckResult]:
    if not wanted(cfg):
        return []
    started = time.monotonic()
    sel = current_selection(cfg)
    if sel.address is None:
        return [fail(LINK, "ipv6-address", f"IPv6 was asked for, but {sel.problem}",
                     "give this host a global IPv6 address (router advertisements / DHCPv6 on the LAN), or set "
                     "ipv6 = false", cause="no-ipv6", elapsed=time.monotonic() - started)]
    out = [ok(LINK, "ipv6-address", f"stable global IPv6 address {sel.address}" + (f" on {sel.ifname}" if sel.ifname
                                                                                    else ""),
              data={"address": sel.address, "rejected": [list(r) for r in sel.rejected]},
              elapsed=time.monotonic() - started)]
    owned = load_owned(store)
    for m in (m for m in cfg.mappings if cfg.mapping_ipv6(m)):
        started = time.monotonic()
        addr = combine(sel.address, sel.prefixlen, m.ipv6_host) if m.ipv6_host else sel.address
        label = f"{m.protocol.upper()} [{addr}]:{m.internal_port}"
        h = owned.get(m.name)
        try:
            seen = dial(cfg, m) if addr == sel.address else None
        except Exception as exc:  # noqa: BLE001 - the reflector failing is a finding, not a crash
            seen = ("error", str(getattr(exc, "message", None) or exc))
        kw = {"subject": m.name, "elapsed": time.monotonic() - started}
        if h is None or (h.address, h.port) != (addr, m.internal_port):
            have = f" (natlink's pinhole is for {h.label}: the prefix changed)" if h else ""
            out.append(fail(LINK, "pinhole", f"{m.name}: natlink holds no pinhole for {label}{have}",
                            "run `natlink map` (or keep `natlink run` running): it opens the pinhole",
                            cause="no-pinhole", **kw))
        elif time.time() > h.at + h.lease:
            out.append(fail(LINK, "pinhole", f"{m.name}: natlink's pinhole for {label} expired "
                                              f"{time.time() - h.at - h.lease:.0f} s ago",
                            "run `natlink map` or keep `natlink run` running (it renews at half the lease)",
                            cause="expired", **kw))
        elif seen is not None and seen[0] == "open":
            out.append(ok(LINK, "pinhole", f"{m.name}: pinhole {label} (via {h.mapper.upper()}) works: the outside "
                                           "connect came through", **kw))
        else:
            out.append(warn(LINK, "pinhole", f"{m.name}: natlink opened {label} via {h.mapper.upper()} "
                                             f"{time.time() - h.at:.0f} s ago (unverified: the doctor does not ask "
                                             "the router, and no outside connect proved it)",
                            "add a [[probe]] with a reflector for this mapping, or run `natlink map` (it re-requests)",
                            cause="unverified", **kw))
        if seen is None:
            out.append(skipped(LINK, "ipv6-outside", f"{m.name}: no outside IPv6 connect tried (no reflector probe "
                                                     "for this mapping)", "add [[probe]] mapping = NAME, reflector",
                               subject=m.name, cause="not-configured"))
        elif seen[0] == "open":
            out.append(ok(LINK, "ipv6-outside", f"{m.name}: the reflector connected to [{seen[1]}]:{m.internal_port} "
                                                "over IPv6", subject=m.name))
        elif seen[0] == "error":  # the checker failed (e.g. an IPv4-only reflector): nothing is known
            out.append(skipped(LINK, "ipv6-outside", f"{m.name}: the IPv6 outside check could not run: {seen[1]}",
                               "the reflector needs an IPv6 address (its URL must resolve to AAAA)",
                               subject=m.name, cause="checker-error"))
        else:
            out.append(fail(LINK, "ipv6-outside", f"{m.name}: from outside, [{seen[1]}]:{m.internal_port} over IPv6: "
                                                  f"{seen[0]}", "run `natlink map`; check the router's IPv6 "
                                                                "firewall and that the service listens on IPv6",
                            subject=m.name, cause=seen[0]))
    for e in (e for e in cfg.ddns if e.ipv6):
        for name in e.hostnames:
            lk = lookup(e, name, rtype="AAAA")
            kw2 = {"subject": name, "elapsed": lk.elapsed, "data": {"addresses": list(lk.addresses)}}
            if lk.error:
                out.append(fail(LINK, "aaaa", f"{name}: no AAAA record at {lk.server} ({lk.error})",
                                f"run `natlink ddns` (entry {e.name!r})", cause="no-record", **kw2))
            elif sel.address in lk.addresses:
                out.append(ok(LINK, "aaaa", f"{name} AAAA → {sel.address} at {lk.server}", **kw2))
            else:
                out.append(fail(LINK, "aaaa", f"{name} AAAA → {', '.join(lk.addresses)} at {lk.server}, but this "
                                              f"host's address is {sel.address}",
                                f"run `natlink ddns` (entry {e.name!r}) or keep `natlink run` running",
                                cause="stale", **kw2))
    return out
