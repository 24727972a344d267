"""Gandi LiveDNS (API v5 at api.gandi.net/v5/livedns) with a personal access token.

`Authorization: Bearer <PAT>` (default) or, with auth_scheme = "apikey", the deprecated
`Authorization: Apikey <key>`. Per name and family: GET /domains/{fqdn}/records/{name}/{type} (404 = no such
RRset; the apex is "@"), then PUT the same URL with {"rrset_values": [ip], "rrset_ttl": …}, which creates or
replaces that one RRset (Gandi answers 201 {"message": "DNS Record Created"}); other types stay untouched.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from natlink.ddns.base import ProviderResult, short
from natlink.ddns.recordapi import Hints, Name, Record, RecordApiProvider, by_status

DEFAULT_SERVER = "https://api.gandi.net/v5/livedns"
DEFAULT_TTL = 300  # LiveDNS minimum; Gandi's own default is 10800
SCHEMES = {"bearer": "Bearer", "apikey": "Apikey"}


HINTS = Hints(auth="create a personal access token allowed to manage this domain's DNS records and point "
                   "token_* at it",
              zone="LiveDNS does not serve this domain for this token; fix zone / hostnames or switch the "
                   "domain to LiveDNS",
              rejected="check hostnames and ttl (at least 300)")


def classify_error(status: int, payload: Any, body: str, headers: dict[str, str]) -> ProviderResult:
    """Map a failed LiveDNS answer ({"code", "message", "object", "cause"}) to a typed outcome (pure)."""
    detail = str(payload["message"]) if isinstance(payload, dict) and payload.get("message") else short(body)
    return by_status("Gandi", status, detail or f"HTTP {status}", headers.get("retry-after"), HINTS)


class GandiProvider(RecordApiProvider):
    name = "gandi"
    label = "Gandi"
    default_server = DEFAULT_SERVER
    rrsets = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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
