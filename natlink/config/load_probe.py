"""Section loader for [[probe]]."""

from __future__ import annotations

from typing import Any

from natlink import cleartext
from natlink.config.model import PROBE_TIMEOUT_MAX, VIAS, MappingCfg, ProbeCfg
from natlink.config.problems import Loader
from natlink.config.section import Section, did_you_mean, keys, shown, tables
from natlink.config.values import entry_name
from natlink.hostport import parse_target


def probes(loader: Loader, data: Any, mappings: tuple[MappingCfg, ...]) -> tuple[ProbeCfg, ...]:
    names: set[str] = set()
    mapping_names = [m.name for m in mappings]
    known = keys(ProbeCfg, secrets=("token",)) | {cleartext.ALLOW_KEY}
    found = [loader.guard(_probe, loader, s, names, mapping_names) for s in tables(loader, data, "probe", known)]
    return tuple(p for p in found if p is not None)


def _probe(loader: Loader, s: Section, names: set[str], mapping_names: list[str]) -> ProbeCfg:
    mapping = s.string("mapping")
    target = s.string("target")
    if (mapping is None) == (target is None):
        loader.fail(s.path, "give either mapping = \"NAME\" or target = \"host:port\"")
    if mapping is not None and mapping not in mapping_names and not loader.failed_under("mapping["):
        s.fail("mapping", f"no [[mapping]] is named {shown(mapping)}" + did_you_mean(mapping, mapping_names)
               if mapping_names else f"no [[mapping]] is named {shown(mapping)} (there are no mappings)")
    if target is not None and parse_target(target) is None:
        s.fail("target", f"{shown(target)} is not host:port (e.g. \"rdp.home.example:3390\", \"[2001:db8::1]:443\")")
    name = entry_name(s, names, default=mapping or target, allow_target=True)
    via = s.string("via", "reflector", choices=VIAS)
    reflector = s.url("reflector", required=via == "reflector")
    echoip = s.url("echoip", required=via == "echoip")
    token = s.secret("token", required=False)
    allow = s.no_cleartext("reflector", reflector if token is not None else None, "the reflector token")
    timeout = s.seconds("timeout", ProbeCfg.timeout)
    if timeout > PROBE_TIMEOUT_MAX:  # the checker's HTTP request gets this plus 3 s: far under the job's hang limit
        s.fail("timeout", f"{timeout:g} s is longer than a probe may wait (at most {PROBE_TIMEOUT_MAX:g} s)")
    probe = ProbeCfg(name=name, mapping=mapping, target=target, via=via or "reflector", reflector=reflector,
                     echoip=echoip, token=token, timeout=timeout,
                     protocol=(s.string("protocol", "tcp", choices=("tcp", "udp")) or "tcp"),
                     allow_insecure_http=allow)
    s.finish()
    return probe
