"""FreeDNS (afraid.org), dynamic update API v2: GET https://sync.afraid.org/u/<token>/?ip=X.

Every FreeDNS record has its own update token, so the token *is* the credential and the record: `token`
updates the A record, `token_v6` the AAAA record (sent to v6.sync.afraid.org), one request per family. The
entry's hostnames name the record(s) the token updates, for messages and the live-record check. The answer
is one line of text: "Updated N host(s) … to IP …", "No IP change detected for …", or "ERROR: …". The
token travels in the URL path, so every message is redacted.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from typing import Any

from natlink.ddns.base import Provider, ProviderResult, combine, http_trouble, fatal, short, success, transient
from natlink.ddns.urls import base_url
from natlink.net.http import HttpError

TOKENS = {4: "token", 6: "token_v6"}
_ADDRESS = re.compile(r"\bto ([0-9A-Fa-f:.]+)")


def parse_answer(status: int, body: str, ip: str, retry_after: str | None = None) -> ProviderResult:
    """Map one FreeDNS answer to a typed outcome (pure)."""
    text = " ".join(body.split())
    trouble = http_trouble("FreeDNS", status, retry_after)
    if trouble is not None:
        return trouble
    if status == 200 and text.startswith("Updated"):
        echoed = _ADDRESS.search(text)
        if echoed:
            try:
                if str(ipaddress.ip_address(echoed.group(1))) != ip:
                    return transient("mismatch", f"FreeDNS recorded {echoed.group(1)}, not {ip}; retrying later")
            except ValueError:
                pass
        return success("good", f"FreeDNS: {short(text, 120)}")
    if status == 200 and text.startswith("No IP change detected"):
        return success("nochg", f"FreeDNS: already {ip}")
    lowered = text.lower()
    if "unable to locate this record" in lowered:
        return fatal("badtoken", "FreeDNS does not know this update token (record deleted or re-created, or the "
                                 "password changed); copy the record's current token from Dynamic DNS into "
                                 "token_file / token_v6_file")
    if lowered.startswith("error"):
        return fatal("error", f"FreeDNS answered {short(text)!r}; fix the entry (natlink does not retry it)")
    if status in (401, 403, 404):
        return fatal(f"http-{status}", f"FreeDNS answered HTTP {status}: the update URL or token is wrong")
    return transient("unexpected", f"FreeDNS answered {short(text)!r} (HTTP {status}); retrying later")


class FreednsProvider(Provider):
    name = "freedns"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for family, enabled in ((4, self.entry.ipv4), (6, self.entry.ipv6)):
            if enabled and TOKENS[family] not in self.secrets:
                raise ValueError(f"freedns: {'ipv4' if family == 4 else 'ipv6'} = true needs "
                                 f"{TOKENS[family]}_file (the update token of the "
                                 f"{'A' if family == 4 else 'AAAA'} record)")

    def base(self, family: int) -> str:
        server = self.option("server") or self.preset("server_v6" if family == 6 else "server")
        return base_url(str(server))

    def update(self, addresses: dict[int, str]) -> ProviderResult:
        results = []
        for family, ip in sorted(addresses.items()):
            result = self._one(family, ip).about(None, family)
            results.append(result)
            if result.kind == "transient":
                break
        return combine(results)

    def _one(self, family: int, ip: str) -> ProviderResult:
        url = f"{self.base(family)}/u/{self.secrets[TOKENS[family]].value}/"
        try:
            resp = self.http.request("GET", url, params={"ip": ip})
        except HttpError as exc:
            return transient(exc.kind, self.safe(f"FreeDNS: {exc.message}; natlink retries later"))
        result = parse_answer(resp.status, resp.text(), ip, resp.headers.get("retry-after"))
        return replace(result, message=self.safe(result.message))
