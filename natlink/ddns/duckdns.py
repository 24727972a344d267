"""DuckDNS: GET /update?domains=a,b&token=T&ip=X[&ipv6=Y]&verbose=true; the body is OK or KO.

With verbose=true an OK body is "OK\\n<ipv4>\\n<ipv6>\\nUPDATED|NOCHANGE", which lets natlink check the
recorded address. KO means a wrong token or a domain not in the account: fatal. The token travels in the
query string, so every message is redacted and the HTTP client never logs URLs.
"""

from __future__ import annotations

import ipaddress

from natlink.ddns.base import Provider, ProviderResult, http_trouble, fatal, short, success, transient
from natlink.ddns.urls import base_url
from natlink.net.http import HttpError

DEFAULT_SERVER = "https://www.duckdns.org"


def subdomain(hostname: str) -> str:
    """"myhome.duckdns.org" or "myhome" -> "myhome" (DuckDNS wants only the subdomain)."""
    name = hostname.rstrip(".").lower()
    return name[: -len(".duckdns.org")] if name.endswith(".duckdns.org") else name


def parse_answer(status: int, body: str, sent: dict[int, str], retry_after: str | None = None) -> ProviderResult:
    lines = [line.strip() for line in body.strip().splitlines()]
    head = lines[0] if lines else ""
    if status == 200 and head == "OK":
        recorded = [ln for ln in lines[1:3] if ln]
        for ip in recorded:
            try:
                addr = str(ipaddress.ip_address(ip))
            except ValueError:
                continue
            if addr not in sent.values():
                return transient("mismatch", f"DuckDNS answered OK but recorded {addr}, not what natlink sent "
                                             f"({', '.join(sent.values())}); retrying later")
        changed = lines[3] if len(lines) > 3 else ""
        outcome = "nochg" if changed == "NOCHANGE" else "good"
        return success(outcome, f"DuckDNS {'already up to date' if outcome == 'nochg' else 'updated'} "
                                f"({', '.join(sent.values())})")
    if status == 200 and head == "KO":
        return fatal("ko", "DuckDNS answered KO: the token is wrong or a domain is not in this account; fix "
                           "token_file / hostnames (use the subdomain, e.g. \"myhome\")")
    if status == 401 or status == 403:
        return fatal(f"http-{status}", f"DuckDNS answered HTTP {status}: the token was refused; fix token_file")
    trouble = http_trouble("DuckDNS", status, retry_after)
    if trouble is not None:
        return trouble
    if status != 200:
        return fatal(f"http-{status}", f"DuckDNS answered HTTP {status}; check the entry's server option")
    return transient("unexpected", f"DuckDNS answered {short(body)!r}, neither OK nor KO; retrying later")


class DuckdnsProvider(Provider):
    name = "duckdns"

    def update(self, addresses: dict[int, str]) -> ProviderResult:
        server = base_url(str(self.option("server", DEFAULT_SERVER)))
        params = {"domains": ",".join(subdomain(h) for h in self.hostnames),
                  "token": self.secrets["token"].value, "verbose": "true"}
        if 4 in addresses:
            params["ip"] = addresses[4]
        if 6 in addresses:
            params["ipv6"] = addresses[6]
        try:
            resp = self.http.request("GET", server + "/update", params=params)
        except HttpError as exc:
            return transient(exc.kind, self.safe(f"DuckDNS: {exc.message}; natlink retries later"))
        result = parse_answer(resp.status, resp.text(), addresses, resp.headers.get("retry-after"))
        return ProviderResult(result.outcome, result.kind, self.safe(result.message), result.retry_after)
