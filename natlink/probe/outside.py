"""Ask the outside: the reflector (one request for up to MAX_PORTS_PER_REQUEST targets), an echoip checker, or
a hairpin dial of our own public address; each TargetCheck gets what the outside reported."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from natlink.probe import echoip, hairpin, reflector_client
from natlink.probe.httpcall import CheckerError
from natlink.probe.targets import Target
from natlink.secrets import Secret

MAX_PORTS_PER_REQUEST = 32  # a reflector's default cap: one request for up to 32 targets


@dataclass
class Outside:
    """What the outside reported for one (target, family)."""

    outcome: str = "error"
    error: str = ""
    data: bytes | None = None
    seen_as: str | None = None  # the address the checker saw / dialled
    finished: float = 0.0


def dial_budget(timeout: float) -> float:
    # The checker's own round trip must fit into the configured timeout too.
    return max(0.3, timeout - min(0.5, 0.15 * timeout))


@dataclass
class TargetCheck:
    """One target in one IP family: where the outside dials, and what it reported."""

    target: Target
    family: str
    public_address: str | None = None
    outside: Outside = field(default_factory=Outside)
    read: int = 0
    inside: Target | None = None  # the target at this host's global IPv6 address (ipv6 jobs of an ipv6 mapping)
    dialled: bool = False  # the outside was asked (the CGNAT sentence must say so)


def run_outside(pool: ThreadPoolExecutor, jobs: list[TargetCheck], tokens: dict[str, Secret | None]) -> None:
    """Ask every check's outside concurrently (reflector targets batched per reflector, token, family, timeout)."""
    asks: list[Callable[[], None]] = []
    batches: dict[tuple[str, str, str, float], list[TargetCheck]] = {}
    for job in jobs:
        t = job.target
        if job.outside.outcome == "error" and job.outside.error:
            continue  # already failed (checker URL did not resolve)
        if t.via == "hairpin":
            asks.append(partial(_hairpin_job, job))
        elif t.via == "echoip":
            asks.append(partial(_echoip_job, job))
        else:
            key = (t.probe.reflector or "", t.probe.name if t.probe.token else "", job.family, t.probe.timeout)
            batches.setdefault(key, []).append(job)
    for (url, _tok, family, timeout), group in batches.items():
        token = tokens.get(group[0].target.probe.name)
        for i in range(0, len(group), MAX_PORTS_PER_REQUEST):
            asks.append(partial(_reflector_batch, url, token, family, timeout, group[i:i + MAX_PORTS_PER_REQUEST]))
    if not asks:
        return
    # the last ask runs in this thread: one reflector request (any number of targets) starts no worker thread
    tasks: list[Future[None]] = [pool.submit(ask) for ask in asks[:-1]]
    asks[-1]()
    for task in tasks:
        task.result()


def _reflector_batch(url: str, token: Secret | None, family: str, timeout: float, group: list[TargetCheck]) -> None:
    asks: dict[tuple[int, str], int] = {}
    for j in group:
        port = dial_port(j)
        asks[(port, j.target.protocol)] = max(asks.get((port, j.target.protocol), 0), j.read)
    sent = time.monotonic()
    try:
        answer = reflector_client.ask(url, [reflector_client.PortAsk(p, proto, r) for (p, proto), r in asks.items()],
                                      dial_timeout=dial_budget(timeout), token=token, family=family,
                                      http_timeout=timeout + 3.0,
                                      allow_insecure_http=group[0].target.probe.allow_insecure_http)
    except CheckerError as exc:
        now = time.monotonic()
        for j in group:
            j.outside = Outside("error", str(exc), finished=now)
        return
    now = time.monotonic()
    for j in group:
        got = answer.get(dial_port(j), j.target.protocol)
        if got is None:
            j.outside = Outside("error", "the reflector's answer lacks this port", seen_as=answer.address, finished=now)
        else:
            # per port: when its own dial finished, not when the slowest port of the batch did
            j.outside = Outside(got.outcome, got.error, got.data, answer.address, min(now, sent + got.elapsed + 0.01))
        j.public_address = answer.address


def dial_port(j: TargetCheck) -> int:
    # IPv6 has no NAT in front of the host: the outside reaches the internal port directly.
    if j.family == "ipv6" and j.target.internal_port:
        return j.target.internal_port
    return j.target.external_port


def _echoip_job(job: TargetCheck) -> None:
    t = job.target
    try:
        ans = echoip.check_port(t.probe.echoip or "", dial_port(job), timeout=t.probe.timeout + 3.0, family=job.family)
    except CheckerError as exc:
        job.outside = Outside("error", str(exc), finished=time.monotonic())
        return
    job.public_address = ans.ip
    job.outside = Outside("open" if ans.reachable else "closed", seen_as=ans.ip, finished=time.monotonic())


def _hairpin_job(job: TargetCheck) -> None:
    if not job.public_address:
        job.outside = Outside("error", "the public address is unknown (no router answered and no report was given); "
                                       "set target = \"PUBLIC-IP:PORT\" or run `natlink ip`", finished=time.monotonic())
        return
    out = hairpin.check(job.public_address, job.target.external_port, job.target.protocol,
                        dial_budget(job.target.probe.timeout), job.read)
    job.outside = Outside(out.outcome, out.error, out.data, finished=time.monotonic())
