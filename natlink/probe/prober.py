"""Probe every target from outside, concurrently, and judge each one (verdicts.py holds the judging).

Per target: (A) look inside — listen on the free internal port with a nonce, or read what the running
service says first; (B) ask the outside (reflector / echoip) or dial the public address (hairpin);
(C) turn the observations into verdicts and compare targets with each other.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from natlink.config import Config, ProbeCfg, parse_target
from natlink.errors import NatlinkError, UsageError
from natlink.netaddr import AddrKind, classify, explain_wan
from natlink.probe import echoip, hairpin, reflector_client
from natlink.probe.dial import dial_tcp
from natlink.probe.httpcall import CheckerError, families
from natlink.probe.nonce_listener import NonceHub, NonceListener, try_listen
from natlink.probe.wan_facts import (
    RouterFacts,
    WanView,
    cgnat_sentence,
    forwarding,
    router_answer,
    router_table,
    router_wan,
    wan_sentences,
    wan_view,
)
from natlink.probe.verdicts import (
    Inside,
    Observation,
    ProbeResult,
    Verdict,
    cross_check,
    exit_code,
    result_from,
)
from natlink.secrets import Secret, SecretUnavailable, read_secret

log = logging.getLogger(__name__)

GREETING_WINDOW = 0.3  # how long a service gets to speak first when read from inside
GREETING_MAX = 128
# A router on the LAN answers its WAN address in milliseconds: it gets this head start so a CGNAT line is found
# before anything is dialled; one slower than this (or absent) no longer delays the dial-back.
ROUTER_HEAD_START = 0.3
MAX_PORTS_PER_REQUEST = 32  # a reflector's default cap: one request for up to 32 targets

__all__ = ["ProbeResult", "Verdict", "Target", "probe_all", "resolve_targets", "exit_code"]


@dataclass(frozen=True)
class Target:
    name: str
    via: str
    protocol: str
    external_port: int
    probe: ProbeCfg  # where the outside is (reflector / echoip URL, token, timeout)
    host: str | None = None  # a bare "host:port" target's host
    internal_ip: str | None = None  # "auto" is resolved in probe_all
    internal_port: int | None = None
    mapping: str | None = None

    @property
    def internal(self) -> str | None:
        if not self.internal_ip or not self.internal_port:
            return None
        return f"[{self.internal_ip}]:{self.internal_port}" if ":" in self.internal_ip else \
            f"{self.internal_ip}:{self.internal_port}"


# --------------------------------------------------------------------------- targets


def resolve_targets(cfg: Config, names: Iterable[str] | None = None) -> list[Target]:
    """[[probe]] entries, or the named probes / mappings / host:port strings (UsageError, exit 2, if unknown)."""
    if not names:
        if not cfg.probes:
            raise UsageError("no [[probe]] is configured",
                             'add [[probe]] mapping = "NAME" via = "reflector" reflector = "http://HOST:8765"')
        return [_from_probe(cfg, p) for p in cfg.probes]
    out: list[Target] = []
    for name in names:
        probe = next((p for p in cfg.probes if p.name == name), None)
        if probe is not None:
            out.append(_from_probe(cfg, probe))
            continue
        template = _template(cfg, name)
        if cfg.mapping(name) is not None:
            out.append(_from_probe(cfg, replace(template, name=name, mapping=name, target=None)))
        elif parse_target(name) is not None:
            out.append(_from_probe(cfg, replace(template, name=name, mapping=None, target=name)))
        else:
            known = [p.name for p in cfg.probes] + [m.name for m in cfg.mappings]
            raise UsageError(f"{name!r} is not a probe, a mapping or host:port",
                             f"use one of {', '.join(known)} or HOST:PORT" if known else "use HOST:PORT")
    return out


def _template(cfg: Config, name: str) -> ProbeCfg:
    """Ad-hoc targets borrow the outside of the first configured reflector/echoip probe."""
    template = next((p for p in cfg.probes if p.via != "hairpin"), None) or next(iter(cfg.probes), None)
    if template is None:
        raise UsageError(f"cannot probe {name!r}: no [[probe]] says where the outside checker is",
                         'add a [[probe]] with via = "reflector" and reflector = "http://HOST:8765"')
    return template


def _from_probe(cfg: Config, p: ProbeCfg) -> Target:
    if p.mapping is not None:
        m = cfg.mapping(p.mapping)
        if m is None:  # config validation already refuses this; keep the message anyway
            raise UsageError(f"probe {p.name!r} names mapping {p.mapping!r}, which does not exist", "fix the config")
        return Target(name=p.name, via=p.via, protocol=m.protocol, external_port=m.external_port, probe=p,
                      internal_ip=m.internal_ip or cfg.router.lan_ip, internal_port=m.internal_port, mapping=m.name)
    parsed = parse_target(p.target or "")
    if parsed is None:
        raise UsageError(f"probe {p.name!r}: target {p.target!r} is not host:port", "fix the config")
    return Target(name=p.name, via=p.via, protocol=p.protocol, external_port=parsed[1], probe=p, host=parsed[0])


# --------------------------------------------------------------------------- inside


@dataclass
class InsideView:
    inside: Inside = Inside.UNKNOWN
    greeting: bytes | None = None
    listener: NonceListener | None = None
    note: str = ""


def _listen_inside(ip: str, port: int, protocol: str, hub: NonceHub) -> InsideView | None:
    """Hold the internal port ourselves when it is free (a bind: instant). None: something listens there (TCP),
    so look at it by dialing."""
    listener, status = try_listen(ip, port, protocol, hub)
    if listener is not None:
        return InsideView(Inside.SELF, listener=listener)
    if status.startswith("error"):
        return InsideView(note=status)
    if protocol == "udp":
        return InsideView(Inside.SERVICE) if status == "in-use" else InsideView()
    return None


def _look_inside(ip: str, port: int, protocol: str, timeout: float) -> InsideView:
    """What runs on an internal port natlink could not (or may not) hold itself: dial it and read its greeting."""
    if protocol == "udp":
        return InsideView()
    outcome = dial_tcp(ip, port, min(timeout, 1.0), read=GREETING_MAX, read_timeout=GREETING_WINDOW)
    if outcome.outcome == "open":
        return InsideView(Inside.SERVICE, greeting=outcome.data or None)
    if outcome.outcome == "refused":
        return InsideView(Inside.NOTHING)
    return InsideView(note=f"{ip}:{port} from here: {outcome.outcome}")


def _local_ip_toward(host: str) -> str | None:
    """The source address this host uses toward `host` (a UDP connect sends nothing)."""
    try:
        infos = socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)
        fam, _t, _p, _c, sockaddr = infos[0]
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.connect(sockaddr)
            return str(s.getsockname()[0])
    except (OSError, IndexError):
        return None


# --------------------------------------------------------------------------- outside


@dataclass
class Outside:
    """What the outside reported for one (target, family)."""

    outcome: str = "error"
    error: str = ""
    data: bytes | None = None
    seen_as: str | None = None  # the address the checker saw / dialled
    finished: float = 0.0


def _dial_budget(timeout: float) -> float:
    # The checker's own round trip must fit into the configured timeout too.
    return max(0.3, timeout - min(0.5, 0.15 * timeout))


def probe_secret(p: ProbeCfg) -> Secret | None:
    """The probe's reflector token, or None; NatlinkError naming the probe when it cannot be read."""
    if p.token is None:
        return None
    try:
        return read_secret(p.token)
    except SecretUnavailable as exc:
        raise NatlinkError(f"probe {p.name!r}: {exc.message}", exc.hint) from None


# --------------------------------------------------------------------------- probe_all


@dataclass
class _Job:
    target: Target
    family: str
    public_address: str | None = None
    outside: Outside = field(default_factory=Outside)
    read: int = 0
    inside: Target | None = None  # the target at this host's global IPv6 address (ipv6 jobs of an ipv6 mapping)
    dialled: bool = False  # the outside was asked (the CGNAT sentence must say so)


def probe_all(cfg: Config, targets: Iterable[str] | list[Target] | None = None, report: Any = None, *,
              listen: bool = True, router: Any = None) -> list[ProbeResult]:
    """Probe every target concurrently; a whole run takes about as long as its slowest target.

    targets: names of [[probe]]s / mappings, "host:port" strings, or Target objects (None: every [[probe]]).
    report: a natlink.publicip PublicIpReport; when it says CGNAT every IPv4 target is `cgnat` and nothing
      is dialled. Without a report the router is asked for its WAN address (and its mapping table).
    listen: let natlink listen on free internal ports with a nonce (proves identity).
    router: the caller's RouterSession (or open Router); without one a session is opened for this run only.
    """
    started = time.monotonic()
    items = list(targets) if targets is not None else None
    tlist = items if items and all(isinstance(t, Target) for t in items) else resolve_targets(cfg, items)  # type: ignore[arg-type]
    tokens = {t.probe.name: probe_secret(t.probe) for t in tlist}
    workers = max(4, min(64, 3 * len(tlist)))
    own = None
    if router is None and (report is None or any(t.mapping for t in tlist)):
        from natlink.portmap.session import RouterSession

        router = own = RouterSession.for_config(cfg)
    wan_f: Future[RouterFacts] | None = _background(router_wan, router) if report is None else None
    table_f = _background(router_table, router) if any(t.mapping for t in tlist) else None
    if own is not None:  # closed once the last router call is done (the table read may outlive this call)
        calls = [f for f in (wan_f, table_f) if f is not None]
        for f in calls:
            f.add_done_callback(lambda _f: own.close() if all(c.done() for c in calls) else None)
    budget_end = started + max((t.probe.timeout for t in tlist), default=3.0)
    hub = NonceHub()  # one thread answers every nonce listener of this run
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        tlist = [_resolve_auto(t) for t in tlist]
        six = _ipv6_targets(cfg, tlist)
        views = _inside_views(pool, tlist + list(six.values()), listen, hub)
        # A hairpin dial needs the router's address; otherwise the router gets a head start (a CGNAT answer
        # then skips the dial) and the dial-back does not wait for a router that is slow or absent.
        facts = router_answer(wan_f, None if _needs_wan(tlist) else ROUTER_HEAD_START)
        cgnat = wan_sentences(report, facts)[0]
        try:
            jobs = _jobs(cfg, tlist, report, facts, views, six, bool(cgnat))
            runnable = [j for j in jobs if not (cgnat and j.family == "ipv4" and j.target.via != "hairpin")]
            for j in runnable:
                j.dialled = True
            _run_outside(pool, runnable, views, tokens)
        finally:
            listeners = [v.listener for v in views.values() if v.listener is not None]
            for listener in listeners:
                listener.request_stop()
            for listener in listeners:
                listener.stop()
            hub.close()
    needs_table = any(j.outside.outcome != "open" for j in jobs)
    if facts is None and wan_f is not None and (needs_table or wan_f.done()):
        # A failure may be explained by CGNAT: the router's late answer is waited for within the time budget.
        facts = router_answer(wan_f, max(0.0, budget_end - time.monotonic()))
    wan = wan_view(report, facts, wan_f is not None)
    # Failures get the router's table for a sharper sentence (within the probe's time budget); successes don't wait.
    if table_f is not None and (needs_table or table_f.done()):
        try:
            table = table_f.result(timeout=max(0.0, budget_end - time.monotonic()))
        except TimeoutError:
            table = None
        facts = replace(facts, table=table) if facts is not None else RouterFacts(table=table)
    results = [_judge(j, views, facts, wan, started) for j in jobs]
    return cross_check(results)


def _needs_wan(tlist: list[Target]) -> bool:
    """A hairpin target without an IP address dials the router's WAN address: it must wait for the router."""
    return any(t.via == "hairpin" and not (t.host and _is_ip(t.host)) for t in tlist)


def _background(fn: Any, *args: Any) -> Future[Any]:
    """Run fn in a daemon thread. The router's table only sharpens diagnoses: a router that never answers must
    not hold the process at exit (executor threads are joined at exit: that cost ~2 s per `natlink probe`)."""
    fut: Future[Any] = Future()

    def run() -> None:
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # handed to whoever reads the future
            fut.set_exception(exc)

    threading.Thread(target=run, name="probe-router", daemon=True).start()
    return fut


def _resolve_auto(t: Target) -> Target:
    if t.internal_ip != "auto":
        return t
    toward = t.probe.reflector or t.probe.echoip or ""
    host = toward.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]") if toward else ""
    ip = _local_ip_toward(host) if host else None
    return replace(t, internal_ip=ip)


def _inside_key(t: Target) -> tuple[str, int, str] | None:
    if t.internal_ip is None or t.internal_port is None:
        return None
    return (t.internal_ip, t.internal_port, t.protocol)


def _ipv6_targets(cfg: Config, tlist: list[Target]) -> dict[str, Target]:
    """Target name -> the same target seen at this host's global IPv6 address, for mappings with ipv6 (the
    pinhole opens the internal port there; the reflector dials back only the address that asked, so a mapping
    for another LAN host (ipv6_host) is not probed over IPv6)."""
    wants = {t.name: t for t in tlist if t.via == "reflector" and t.mapping and t.internal_port
             and (m := cfg.mapping(t.mapping)) is not None and cfg.mapping_ipv6(m) and not m.ipv6_host}
    if not wants:
        return {}
    from natlink.portmap.pinhole import current_selection

    address = current_selection(cfg).address
    return {n: replace(t, internal_ip=address) for n, t in wants.items()} if address else {}


def _inside_views(pool: ThreadPoolExecutor, tlist: list[Target], listen: bool,
                  hub: NonceHub) -> dict[tuple[str, int, str], InsideView]:
    keys = {k: t for t in tlist if (k := _inside_key(t)) is not None}
    views: dict[tuple[str, int, str], InsideView] = {}
    dials: dict[tuple[str, int, str], Future[InsideView]] = {}
    for k, t in keys.items():
        # Binding a free port takes microseconds: only the dials to running services go to the pool,
        # so N free ports cost no N thread starts.
        view = _listen_inside(*k, hub) if listen else None
        if view is not None:
            views[k] = view
        else:
            dials[k] = pool.submit(_look_inside, k[0], k[1], k[2], t.probe.timeout)
    views.update({k: f.result() for k, f in dials.items()})
    return views


def _jobs(cfg: Config, tlist: list[Target], report: Any, facts: RouterFacts | None,
          views: dict[tuple[str, int, str], InsideView], six: dict[str, Target] | None = None,
          cgnat: bool = False) -> list[_Job]:
    jobs: list[_Job] = []
    public4 = getattr(report, "public_ipv4", None) if report is not None else None
    if not public4 and facts is not None and facts.wan_ip and classify(facts.wan_ip) is AddrKind.PUBLIC:
        public4 = facts.wan_ip
    six = six or {}
    for t in tlist:
        read = _read_len(views, t)
        if t.via == "hairpin":
            address = t.host if t.host and _is_ip(t.host) else public4
            if t.host and not _is_ip(t.host):
                address = _resolve(t.host, "ipv4") or public4
            fam = "ipv6" if address and ":" in address else "ipv4"
            jobs.append(_Job(t, fam, address, read=read))
            continue
        url = t.probe.reflector if t.via == "reflector" else t.probe.echoip
        try:
            fams = families(url or "")
        except CheckerError as exc:
            jobs.append(_Job(t, "ipv4", public4, Outside("error", str(exc)), read))
            continue
        wanted = [f for f in ("ipv4", "ipv6") if f in fams and (f == "ipv4" or cfg.public_ip.ipv6 or t.name in six
                                                                 or (t.host is not None and ":" in t.host))]
        if t.name in six and cgnat and "ipv4" not in wanted:
            wanted.insert(0, "ipv4")  # CGNAT is the router's fact: IPv4 gets its verdict without an IPv4 reflector
        for fam in wanted or list(fams)[:1]:
            v6 = six.get(t.name) if fam == "ipv6" else None
            jobs.append(_Job(t, fam, public4 if fam == "ipv4" else None, read=_read_len(views, v6) if v6 else read,
                             inside=v6))
    return jobs


def _read_len(views: dict[tuple[str, int, str], InsideView], t: Target) -> int:
    """How many bytes the outside should read back: the nonce line, or what the service said first."""
    key = _inside_key(t)
    view = views.get(key) if key else None
    if view is not None and view.listener is not None:
        return len(view.listener.line)
    return len(view.greeting) if view is not None and view.greeting else 0


def _run_outside(pool: ThreadPoolExecutor, jobs: list[_Job], views: dict[tuple[str, int, str], InsideView],
                 tokens: dict[str, Secret | None]) -> None:
    tasks: list[Future[None]] = []
    batches: dict[tuple[str, str, str, float], list[_Job]] = {}
    for job in jobs:
        t = job.target
        if job.outside.outcome == "error" and job.outside.error:
            continue  # already failed (checker URL did not resolve)
        if t.via == "hairpin":
            tasks.append(pool.submit(_hairpin_job, job))
        elif t.via == "echoip":
            tasks.append(pool.submit(_echoip_job, job))
        else:
            key = (t.probe.reflector or "", t.probe.name if t.probe.token else "", job.family, t.probe.timeout)
            batches.setdefault(key, []).append(job)
    for (url, _tok, family, timeout), group in batches.items():
        token = tokens.get(group[0].target.probe.name)
        for i in range(0, len(group), MAX_PORTS_PER_REQUEST):
            tasks.append(pool.submit(_reflector_batch, url, token, family, timeout, group[i:i + MAX_PORTS_PER_REQUEST]))
    for task in tasks:
        task.result()


def _reflector_batch(url: str, token: Secret | None, family: str, timeout: float, group: list[_Job]) -> None:
    asks: dict[tuple[int, str], int] = {}
    for j in group:
        port = _dial_port(j)
        asks[(port, j.target.protocol)] = max(asks.get((port, j.target.protocol), 0), j.read)
    sent = time.monotonic()
    try:
        answer = reflector_client.ask(url, [reflector_client.PortAsk(p, proto, r) for (p, proto), r in asks.items()],
                                      dial_timeout=_dial_budget(timeout), token=token, family=family,
                                      http_timeout=timeout + 3.0,
                                      allow_insecure_http=group[0].target.probe.allow_insecure_http)
    except CheckerError as exc:
        now = time.monotonic()
        for j in group:
            j.outside = Outside("error", str(exc), finished=now)
        return
    now = time.monotonic()
    for j in group:
        got = answer.get(_dial_port(j), j.target.protocol)
        if got is None:
            j.outside = Outside("error", "the reflector's answer lacks this port", seen_as=answer.address, finished=now)
        else:
            # per port: when its own dial finished, not when the slowest port of the batch did
            j.outside = Outside(got.outcome, got.error, got.data, answer.address, min(now, sent + got.elapsed + 0.01))
        j.public_address = answer.address


def _dial_port(j: _Job) -> int:
    # IPv6 has no NAT in front of the host: the outside reaches the internal port directly.
    if j.family == "ipv6" and j.target.internal_port:
        return j.target.internal_port
    return j.target.external_port


def _echoip_job(job: _Job) -> None:
    t = job.target
    try:
        ans = echoip.check_port(t.probe.echoip or "", _dial_port(job), timeout=t.probe.timeout + 3.0, family=job.family)
    except CheckerError as exc:
        job.outside = Outside("error", str(exc), finished=time.monotonic())
        return
    job.public_address = ans.ip
    job.outside = Outside("open" if ans.reachable else "closed", seen_as=ans.ip, finished=time.monotonic())


def _hairpin_job(job: _Job) -> None:
    if not job.public_address:
        job.outside = Outside("error", "the public address is unknown (no router answered and no report was given); "
                                       "set target = \"PUBLIC-IP:PORT\" or run `natlink ip`", finished=time.monotonic())
        return
    out = hairpin.check(job.public_address, job.target.external_port, job.target.protocol,
                        _dial_budget(job.target.probe.timeout), job.read)
    job.outside = Outside(out.outcome, out.error, out.data, finished=time.monotonic())


def _judge(job: _Job, views: dict[tuple[str, int, str], InsideView], facts: RouterFacts | None,
           wan: WanView, started: float) -> ProbeResult:
    t, out = job.target, job.outside
    key = _inside_key(job.inside or t)
    view = views.get(key) if key and (job.family == "ipv4" or job.inside) else None
    inside = view.inside if view else Inside.UNKNOWN
    listener = view.listener if view else None
    nonce_seen = bool(listener and out.data and listener.line.strip() in out.data)
    # the router's table holds IPv4 port mappings only: it says nothing about an IPv6 pinhole
    forwards, elsewhere = forwarding(facts, t) if t.via != "hairpin" and job.family == "ipv4" else (None, None)
    seen = out.seen_as if t.via != "hairpin" else None
    wan_problem = cgnat_sentence(wan.cgnat, job.dialled, job.outside.outcome) if job.family == "ipv4" and t.via != "hairpin" else None
    if not wan_problem and seen and classify(seen) is AddrKind.CGNAT and t.via != "hairpin":
        wan_problem = explain_wan(seen)  # the outside saw us from a CGNAT address: it is not outside the CGN
    obs = Observation(
        name=t.name, via=t.via, protocol=t.protocol, family=job.family, external_port=_dial_port(job),
        public_address=job.public_address,
        internal=(job.inside or t).internal, inside=inside,
        outcome=out.outcome if job.dialled else "not-tried",
        error=out.error, nonce_seen=nonce_seen,
        greeting_inside=view.greeting if view else None,
        greeting_outside=out.data if (view and view.greeting) else None,
        listener_hits=listener.hits if listener else 0, wan_problem=wan_problem, double_nat=wan.double_nat,
        router_forwards=forwards, router_forwards_to=elsewhere,
        name_mismatch=_name_mismatch(t, seen, job.family),
    )
    elapsed = (out.finished or time.monotonic()) - started
    result = result_from(obs, max(0.0, elapsed))
    extra: dict[str, Any] = {}
    if seen:
        extra["seen_as"] = seen
    if t.mapping:
        extra["mapping"] = t.mapping
    if view and view.note:
        extra["inside_note"] = view.note
    if wan.unverified and job.family == "ipv4" and t.via != "hairpin":
        extra["wan_address"] = wan.unverified
        if result.verdict in (Verdict.TIMEOUT, Verdict.UNREACHABLE):  # the failures CGNAT would also explain
            result = replace(result, detail=f"{result.detail}; {wan.unverified}")
    if out.error and result.verdict is not Verdict.CHECKER_ERROR:
        extra["error"] = out.error
    return replace(result, extra=extra) if extra else result


def _name_mismatch(t: Target, seen: str | None, family: str) -> str | None:
    if not t.host or not seen:
        return None
    if _is_ip(t.host):
        if ipaddress.ip_address(t.host) != ipaddress.ip_address(seen):
            return f"{t.host} is not the address the outside sees you as ({seen}); only that one was dialled"
        return None
    resolved = _resolve(t.host, family)
    if resolved is None:
        return f"{t.host} does not resolve ({family}); the outside dialled {seen}"
    if ipaddress.ip_address(resolved) != ipaddress.ip_address(seen):
        return f"{t.host} resolves to {resolved} but the outside sees you as {seen} — DDNS is stale or points elsewhere"
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _resolve(host: str, family: str) -> str | None:
    try:
        fam = socket.AF_INET6 if family == "ipv6" else socket.AF_INET
        return str(socket.getaddrinfo(host, None, fam, socket.SOCK_STREAM)[0][4][0])
    except (OSError, IndexError):
        return None


def results_to_state(results: list[ProbeResult]) -> dict[str, Any]:
    """The "probe" state document (no secrets: tokens never enter results)."""
    return {"checked_at": time.time(), "ok": exit_code(results) == 0, "results": [r.to_json() for r in results]}

