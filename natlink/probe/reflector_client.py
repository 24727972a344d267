"""Client for a natlink reflector's POST /v1/probe (see natlink.probe.reflector for the protocol)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from natlink import cleartext
from natlink.probe.httpcall import CheckerError, call
from natlink.secrets import Secret


@dataclass(frozen=True)
class PortAsk:
    port: int
    protocol: str = "tcp"
    read: int = 0


@dataclass(frozen=True)
class PortAnswer:
    port: int
    protocol: str
    outcome: str  # open | refused | timeout | unreachable | error
    elapsed: float
    data: bytes
    error: str


@dataclass(frozen=True)
class ReflectorAnswer:
    address: str  # the source address the reflector saw (and dialled)
    results: tuple[PortAnswer, ...]

    def get(self, port: int, protocol: str) -> PortAnswer | None:
        return next((r for r in self.results if r.port == port and r.protocol == protocol), None)


_HTTP_HINTS = {
    401: "the reflector needs a token: set token_file in the [[probe]] section",
    403: "the reflector rejected the token: use the reflector's token file",
    413: "the request was too large for the reflector",
    429: "the reflector rate-limits this address: probe less often",
    503: "the reflector is busy: retry later",
}


def ask(url: str, ports: list[PortAsk], *, dial_timeout: float, token: Secret | None = None,
        family: str | None = None, http_timeout: float | None = None,
        allow_insecure_http: bool = False) -> ReflectorAnswer:
    """Ask the reflector to dial back this host on `ports`; CheckerError when the reflector itself fails.

    A token is never sent over plain http:// to anything but loopback unless `allow_insecure_http` (the
    [[probe]]'s allow_insecure_http; the config loader refuses such a probe without it, this is the last guard)."""
    host = cleartext.cleartext_host(url)
    if token is not None and host is not None and not allow_insecure_http:
        raise CheckerError(cleartext.refusal("the reflector token", url, host))
    body = json.dumps({"ports": [{"port": p.port, "protocol": p.protocol, "read": p.read} for p in ports],
                       "timeout": dial_timeout}).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token.value}"
    answer = call(url, "/v1/probe", method="POST", body=body, headers=headers, family=family,
                  timeout=http_timeout if http_timeout is not None else dial_timeout + 3.0)
    try:
        doc = json.loads(answer.body)
    except ValueError:
        doc = None
    if answer.status != 200:
        said = doc.get("error") if isinstance(doc, dict) else None
        hint = _HTTP_HINTS.get(answer.status, "check the reflector's log")
        raise CheckerError(f"the reflector answered HTTP {answer.status}" + (f" ({said})" if said else "")
                           + f": {hint}")
    try:
        results = tuple(
            PortAnswer(int(r["port"]), str(r["protocol"]), str(r["outcome"]), float(r["elapsed"]),
                       base64.b64decode(r.get("data") or ""), str(r.get("error") or ""))
            for r in doc["results"])
        return ReflectorAnswer(str(doc["address"]), results)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise CheckerError(f"the reflector's answer is malformed ({type(exc).__name__}: {exc}); is {url} a "
                           "natlink reflector?") from None
