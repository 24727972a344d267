"""deSEC (desec.io) REST API v1 with a token (`Authorization: Token …`).

The zone is the `zone` option, else the domain of this account that owns the name (GET
/domains/?owns_qname=…). Per name and family: GET /domains/{zone}/rrsets/{subname}/{type}/ (404 = no such
RRset; the apex is "@" in URLs), then POST /domains/{zone}/rrsets/ to create it or PATCH the RRset's
`records` (its TTL stays). deSEC throttles with HTTP 429 and a Retry-After header.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from natlink.ddns.base import ProviderResult, fatal, short
from natlink.ddns.recordapi import Hints, Name, Record, RecordApiProvider, by_status

DEFAULT_SERVER = "https://desec.io/api/v1"
DEFAULT_TTL = 3600  # deSEC's usual minimum TTL for a domain


HINTS = Hints(auth="create a token that may manage this domain and point token_* at it",
              zone="the domain is not in this account; fix zone / hostnames",
              rejected="check hostnames and ttl (at least the domain's minimum_ttl)")


def classify_error(status: int, payload: Any, body: str, headers: dict[str, str]) -> ProviderResult:
    """Map a failed deSEC answer ({"detail": …} or per-field lists) to a typed outcome (pure)."""
    detail = str(payload["detail"]) if isinstance(payload, dict) and "detail" in payload else short(body)
    return by_status("deSEC", status, detail or f"HTTP {status}", headers.get("retry-after"), HINTS)


class DesecProvider(RecordApiProvider):
    name = "desec"
    label = "deSEC"
    default_server = DEFAULT_SERVER
    rrsets = True
    zone_lookup = True


    def _call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        resp = self.send(method, self.base + path, body=body, headers=self._auth())
        return self.expect(resp, lambda status, payload: status in ok, classify_error)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.secrets['token'].value}"}

    def _rrset(self, name: Name, rtype: str) -> str:
        return f"/domains/{quote(name.zone)}/rrsets/{quote(name.rel())}/{rtype}/"

    def find_zone(self, fqdn: str) -> str | None:
        owners = self._call("GET", f"/domains/?owns_qname={quote(fqdn)}")
        if isinstance(owners, list) and owners and isinstance(owners[0], dict) and owners[0].get("name"):
            return str(owners[0]["name"])
        raise self.stop(fatal("nozone", f"deSEC: no domain of this account contains {fqdn}; add the domain at "
                                        "desec.io or fix hostnames", per_name=True))

    def fetch(self, name: Name, rtype: str) -> list[Record]:
        resp = self.send("GET", self.base + self._rrset(name, rtype), headers=self._auth())
        if resp.status == 404:
            return []  # no such RRset (or no such domain: then the write that follows says so)
        found = self.expect(resp, lambda status, parsed: status == 200 and isinstance(parsed, dict),
                            classify_error)
        return [Record(str(v), ttl=found.get("ttl")) for v in found.get("records") or []]

    def create(self, name: Name, rtype: str, ip: str) -> None:
        self._call("POST", f"/domains/{quote(name.zone)}/rrsets/",
                   {"subname": name.sub, "type": rtype, "ttl": self.ttl(DEFAULT_TTL), "records": [ip]}, ok=(201,))

    def change(self, name: Name, rtype: str, records: list[Record], ip: str) -> None:
        patch: dict[str, Any] = {"records": [ip]}
        if self.option("ttl"):
            patch["ttl"] = self.ttl(DEFAULT_TTL)
        self._call("PATCH", self._rrset(name, rtype), patch)
