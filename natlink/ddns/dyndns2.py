"""The dyndns2 protocol (GET /nic/update?hostname=…&myip=…, HTTP basic auth, a real User-Agent) and the
providers built on it (their presets are in registry.py): noip, oray, dynu, he (Hurricane Electric), ovh,
strato, and any custom dyndns2 server.

Answers are mapped as the protocol documents them: good/nochg succeed (after checking the echoed address);
nohost/notfqdn/!yours/abuse stop that hostname only; badauth/!donator/numhost/badagent/badsys stop the entry;
dnserr/911/5xx/timeouts are retried later. One request per hostname; per family too where the provider's
myip takes one address (the `separate` rule: HE.net, or `families = "separate"` for a custom server).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import replace
from typing import Any

from natlink.ddns.base import Provider, ProviderResult, combine, http_trouble, fatal, short, success, transient
from natlink.ddns.urls import endpoint
from natlink.net.http import HttpError
from natlink.ddns.registry import SEPARATE, TOGETHER

log = logging.getLogger(__name__)


_FATAL = {
    "badauth": "the username or password was refused; fix username / password_file (No-IP: use your account "
               "e-mail or a DDNS key)",
    "!donator": "the request needs a paid account feature; remove the option or upgrade the account",
    "notfqdn": "the hostname is not a fully-qualified domain name; fix hostnames",
    "nohost": "the hostname does not exist in this account; fix hostnames or create it at the provider",
    "numhost": "too many hostnames in one request; split the entry",
    "abuse": "the provider blocked this hostname for abuse (too many updates); unblock it at the provider, "
             "then run natlink ddns --force NAME",
    "badagent": "the provider refused natlink's User-Agent; please report this as a natlink bug",
    "!yours": "the hostname belongs to another account; fix hostnames or username",
    "badsys": "the provider rejected the system parameter; please report this as a natlink bug",
}
# Answers about one hostname: the entry's other names are still updated.
_PER_NAME = {"notfqdn", "nohost", "abuse", "!yours"}
_TRANSIENT = {
    "dnserr": "the provider's DNS had an error; natlink retries later",
    "911": "the provider reports a server problem or maintenance; natlink retries later",
}


def parse_answer(status: int, body: str, sent: dict[int, str], label: str, hostname: str,
                 retry_after: str | None = None) -> ProviderResult:
    """Map one dyndns2 answer to a typed outcome (pure)."""
    lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
    words = lines[0].split() if lines else []
    code = words[0].lower() if words else ""
    if code in ("good", "nochg"):
        if status != 200:
            return transient(f"http-{status}", f"{label} answered HTTP {status} with {code!r}; retrying later")
        echoed = [part for w in words[1:] for part in w.split(",") if part]
        mismatch = _mismatch(echoed, sent)
        if mismatch:
            return transient("mismatch", f"{label} answered {code} for {hostname} but recorded {mismatch}, not what "
                                         f"natlink sent ({', '.join(sent.values())}); retrying later")
        what = "updated" if code == "good" else "already up to date"
        return success(code, f"{hostname}: {what} ({', '.join(sent.values())})")
    if code in _FATAL:
        return fatal(code, f"{label} answered {code!r} for {hostname}: {_FATAL[code]}", per_name=code in _PER_NAME)
    if code in _TRANSIENT:
        return transient(code, f"{label} answered {code!r} for {hostname}: {_TRANSIENT[code]}")
    if status == 401 or status == 403:
        return fatal("badauth", f"{label} answered HTTP {status} for {hostname}: {_FATAL['badauth']}")
    trouble = http_trouble(label, status, retry_after)
    if trouble is not None:
        return trouble
    if status != 200:
        return fatal(f"http-{status}", f"{label} answered HTTP {status} for {hostname}; check the entry's server "
                                       "option (the URL of the /nic/update endpoint)")
    return transient("unexpected", f"{label} answered {short(body)!r}, which is not a dyndns2 answer; retrying later "
                                   "(check the server option if this persists)")


def _mismatch(echoed: list[str], sent: dict[int, str]) -> str | None:
    for word in echoed:
        try:
            ip = str(ipaddress.ip_address(word))
        except ValueError:
            continue  # some providers add text after the address
        if ip not in sent.values():
            return ip
    return None


class Dyndns2Provider(Provider):
    """One GET per hostname (each gets its own answer line), or per hostname and family (`separate` rule)."""

    name = "dyndns2"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label = self.spec.label if self.spec is not None else "dyndns2 server"
        server = self.option("server", self.preset("server"))
        if not server:
            raise ValueError("dyndns2 needs a server")
        self.url = endpoint(server, self.preset("path", "/nic/update"))
        self.rule = self.spec.family_rule(self.entry.options) if self.spec is not None else TOGETHER

    def params(self, hostname: str, addresses: dict[int, str]) -> dict[str, str]:
        params = {"hostname": hostname, **self.preset("extra", {})}
        v4, v6 = addresses.get(4), addresses.get(6)
        ipv6_param = self.preset("ipv6")
        if ipv6_param == "myip":
            params["myip"] = ",".join(ip for ip in (v4, v6) if ip)
        else:
            if v4:
                params["myip"] = v4
            if v6 and ipv6_param:
                params[ipv6_param] = v6
        return params

    def update(self, addresses: dict[int, str]) -> ProviderResult:
        if 6 in addresses and not self.supports_ipv6:
            addresses = {f: ip for f, ip in addresses.items() if f != 6}
            if not addresses:
                return fatal("unsupported", f"{self.label} takes no IPv6 address; set ipv6 = false")
        return super().update(addresses)

    def update_name(self, hostname: str, addresses: dict[int, str]) -> ProviderResult:
        if self.rule != SEPARATE or len(addresses) < 2:
            family = next(iter(addresses)) if len(addresses) == 1 else None
            return self._one(hostname, addresses).about(hostname, family)
        results = []
        for family, ip in sorted(addresses.items()):
            result = self._one(hostname, {family: ip}).about(hostname, family)
            results.append(result)
            if result.kind != "success" and not result.per_name:
                break
        return combine(results)

    def parse(self, status: int, body: str, sent: dict[int, str], hostname: str,
              retry_after: str | None) -> ProviderResult:
        """The answer's meaning (a dialect of dyndns2 overrides this)."""
        return parse_answer(status, body, sent, self.label, hostname, retry_after)

    def _one(self, hostname: str, addresses: dict[int, str]) -> ProviderResult:
        label = self.label
        username = self.option("username") or (hostname if self.preset("username_is_hostname") else "")
        try:
            resp = self.http.request("GET", self.url, params=self.params(hostname, addresses),
                                     basic_auth=(str(username), self.secrets["password"]))
        except HttpError as exc:
            return transient(exc.kind, self.safe(f"{label}: {exc.message}; natlink retries later"))
        result = self.parse(resp.status, resp.text(), addresses, hostname, resp.headers.get("retry-after"))
        return replace(result, message=self.safe(result.message))
