"""DigitalOcean DNS (API v2) with a personal access token (Bearer; scope domain:read + domain:update).

Per name and family: GET /v2/domains/{zone}/records?type=A&name={fqdn} (DigitalOcean filters by the full
name), then POST /v2/domains/{zone}/records to create one or PATCH /v2/domains/{zone}/records/{id} with the
new `data` for each record holding another address (TTL and the rest stay). Errors are
{"id": "unauthorized" | "not_found" | "too_many_requests" | …, "message": "…"}.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from natlink.ddns.base import ProviderResult, short
from natlink.ddns.recordapi import Hints, Name, Record, RecordApiProvider, by_status

DEFAULT_SERVER = "https://api.digitalocean.com/v2"
DEFAULT_TTL = 1800  # DigitalOcean's default


HINTS = Hints(auth="create a token with domain read and update scope and point token_* at it",
              zone="the domain is not in this account; fix zone / hostnames",
              rejected="check hostnames and ttl")


def classify_error(status: int, payload: Any, body: str, headers: dict[str, str]) -> ProviderResult:
    """Map a failed DigitalOcean answer ({"id", "message"}; the id follows the status) to an outcome (pure)."""
    code = str(payload.get("id", "")) if isinstance(payload, dict) else ""
    detail = f"{code}: {payload.get('message')}" if code else short(body)
    return by_status("DigitalOcean", status, detail or f"HTTP {status}", headers.get("retry-after"), HINTS)


class DigitaloceanProvider(RecordApiProvider):
    name = "digitalocean"
    label = "DigitalOcean"
    default_server = DEFAULT_SERVER


    def _call(self, method: str, path: str, body: Any = None, ok: int = 200) -> Any:
        resp = self.send(method, self.base + path, body=body, bearer=self.secrets["token"])
        return self.expect(resp, lambda status, payload: status == ok and isinstance(payload, dict),
                           classify_error)

    def fetch(self, name: Name, rtype: str) -> list[Record]:
        query = urlencode({"type": rtype, "name": name.fqdn, "per_page": "200"})
        found = self._call("GET", f"/domains/{quote(name.zone)}/records?{query}")
        return [Record(str(r.get("data")), str(r.get("id")), r.get("ttl"))
                for r in found.get("domain_records") or [] if r.get("type") == rtype and r.get("name") == name.rel()]

    def create(self, name: Name, rtype: str, ip: str) -> None:
        self._call("POST", f"/domains/{quote(name.zone)}/records",
                   {"type": rtype, "name": name.rel(), "data": ip, "ttl": self.ttl(DEFAULT_TTL)}, ok=201)

    def change(self, name: Name, rtype: str, records: list[Record], ip: str) -> None:
        patch: dict[str, Any] = {"type": rtype, "data": ip}
        if self.option("ttl"):
            patch["ttl"] = self.ttl(DEFAULT_TTL)
        self._call("PATCH", f"/domains/{quote(name.zone)}/records/{quote(records[0].id)}", patch)
