"""Client for echoip-compatible checkers (ifconfig.co style): GET /port/N -> {"ip", "port", "reachable"}.

The checker dials back the address that asked. Its own failures (HTTP errors, rate limits, odd JSON)
are CheckerError — never reported as "closed". `reachable: false` cannot tell refused from timeout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from natlink.probe.httpcall import CheckerError, call


@dataclass(frozen=True)
class EchoipAnswer:
    ip: str
    port: int
    reachable: bool


def check_port(url: str, port: int, *, timeout: float, family: str | None = None) -> EchoipAnswer:
    answer = call(url, f"/port/{port}", headers={"Accept": "application/json"}, timeout=timeout, family=family)
    if answer.status == 429:
        raise CheckerError("the echoip checker rate-limits this address (HTTP 429): probe less often")
    if answer.status != 200:
        raise CheckerError(f"the echoip checker answered HTTP {answer.status}: it failed, the port was not judged")
    try:
        doc = json.loads(answer.body)
        result = EchoipAnswer(str(doc["ip"]), int(doc["port"]), doc["reachable"])
    except (ValueError, KeyError, TypeError):
        raise CheckerError(f"the echoip checker's answer is not /port JSON: {answer.body[:80]!r}") from None
    if not isinstance(result.reachable, bool):
        raise CheckerError("the echoip checker's 'reachable' is not true/false")
    if result.port != port:
        raise CheckerError(f"the echoip checker answered for port {result.port}, not {port}")
    return result
