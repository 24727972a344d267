"""Gandi LiveDNS (API v5 at api.gandi.net/v5/livedns) with a personal access token.

`Authorization: Bearer <PAT>` (default) or, with auth_scheme = "apikey", the deprecated
`Authorization: Apikey <key>`. Per name and family: GET /domains/{fqdn}/records/{name}/{type} (404 = no such
RRset; the apex is "@"), then PUT the same URL with {"rrset_values": [ip], "rrset_ttl": …}, which creates or
replaces that one RRset (Gandi answers 201 {"message": "DNS Record Created"}); other types stay untouched.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from natlink.ddns.base import ProviderResult, fatal, retry_after_seconds, short, transient
from natlink.ddns.recordapi import Name, Record, RecordApiProvider

DEFAULT_SERVER = "https://api.gandi.net/v5/livedns"
DEFAULT_TTL = 300  # LiveDNS minimum; Gandi's own default is 10800
SCHEMES = {"bearer": "Bearer", "apikey": "Apikey"}


def classify_error(status: int, payload: Any, body: str, headers: dict[str, str]) -> ProviderResult:
    """Map a failed LiveDNS answer ({"code", "message", "object", "cause"}) to a typed outcome (pure)."""
    detail = str(payload.get("message")) if isinstance(payload, dict) and payload.get("message") else short(body)
    detail = detail or f"HTTP {status}"
    if status in (401, 403):
        return fatal("auth", f"Gandi refused the token ({detail}); create a personal access token with "
                             "\"Manage domain name technical configurations\" for this domain")
    if status == 429:
        return transient("rate-limited", f"Gandi rate limit ({detail}); natlink waits before retrying",
                         retry_after_seconds(headers.get("retry-after")))
    if status == 404:
        return fatal("nozone", f"Gandi LiveDNS does not serve this domain for this token ({detail}); fix zone "
                               "/ hostnames or switch the domain to LiveDNS", per_name=True)
    if status >= 500:
        return transient(f"http-{status}", f"Gandi answered HTTP {status} ({detail}); natlink retries later")
    return fatal("rejected", f"Gandi rejected the request (HTTP {status}: {detail}); check hostnames and ttl")


class GandiProvider(RecordApiProvider):
    name = "gandi"
    label = "Gandi"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        server = str(self.option("server", DEFAULT_SERVER)).rstrip("/")
        self.base = server if "://" in server else "https://" + server
        scheme = str(self.option("auth_scheme", "bearer")).lower()
        if scheme not in SCHEMES:
            raise ValueError(f"gandi: auth_scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
        self.scheme = SCHEMES[scheme]

    def _url(self, name: Name, rtype: str) -> str:
        return f"{self.base}/domains/{quote(name.zone)}/records/{quote(name.rel())}/{rtype}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"{self.scheme} {self.secrets['token'].value}"}

    def fetch(self, name: Name, rtype: str) -> list[Record]:
        resp = self.send("GET", self._url(name, rtype), headers=self._headers())
        if resp.status == 404:
            return []  # no such RRset (or no such domain: then the write that follows says so)
        found = self.expect(resp, lambda status, parsed: status == 200 and isinstance(parsed, dict),
                            classify_error)
        return [Record(str(v), ttl=found.get("rrset_ttl")) for v in found.get("rrset_values") or []]

    def _put(self, name: Name, rtype: str, ip: str, ttl: int) -> None:
        resp = self.send("PUT", self._url(name, rtype), headers=self._headers(),
                         body={"rrset_values": [ip], "rrset_ttl": ttl})
        self.expect(resp, lambda status, payload: status in (200, 201), classify_error)

    def create(self, name: Name, rtype: str, ip: str) -> None:
        self._put(name, rtype, ip, self.ttl(DEFAULT_TTL))

    def change(self, name: Name, rtype: str, records: list[Record], ip: str) -> None:
        self._put(name, rtype, ip, self.ttl(records[0].ttl or DEFAULT_TTL))
