"""Porkbun JSON API v3: every call is a POST whose JSON body carries `apikey` and `secretapikey`.

Per name and family: POST /dns/retrieveByNameType/{domain}/{type}/{subdomain} (no subdomain at the apex),
then /dns/create/{domain} when there is no record or /dns/editByNameType/{domain}/{type}/{subdomain}
(which sets every record of that name and type; the TTL sent is the record's own). Answers are
{"status": "SUCCESS", …} or {"status": "ERROR", "message": "…"} with HTTP 4xx; API access must be switched
on per domain in Porkbun's dashboard.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from natlink.ddns.base import ProviderResult, fatal, short
from natlink.ddns.recordapi import Hints, Name, Record, RecordApiProvider, by_status

DEFAULT_SERVER = "https://api.porkbun.com/api/json/v3"
DEFAULT_TTL = 600  # Porkbun's minimum and default


HINTS = Hints(auth="check api_key_* and secret_api_key_*", zone="the domain is not in this account; fix zone / "
              "hostnames", rejected="check hostnames, zone and ttl (at least 600)")


def classify_error(status: int, payload: Any, body: str, headers: dict[str, str]) -> ProviderResult:
    """Map a failed Porkbun answer to a typed outcome (pure). Porkbun words its errors in `message` and
    answers most of them with HTTP 400, so the message decides first, the status after."""
    message = str(payload.get("message", "")) if isinstance(payload, dict) else ""
    detail = message or short(body) or f"HTTP {status}"
    lowered = message.lower()
    if "api key" in lowered:
        status = 401
    elif "opted in" in lowered or "api access" in lowered:
        return fatal("api-access", f"Porkbun: {detail}; switch on API ACCESS for this domain in Porkbun's "
                                   "domain management", per_name=True)
    elif status == 503 or "rate limit" in lowered or "too many" in lowered:
        status = 429
    elif "invalid domain" in lowered:
        status = 404
    return by_status("Porkbun", status, detail, headers.get("retry-after"), HINTS)


def _seconds(value: Any) -> int | None:
    """Porkbun sends TTLs as strings ("600"); anything unreadable counts as unknown."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class PorkbunProvider(RecordApiProvider):
    name = "porkbun"
    label = "Porkbun"
    default_server = DEFAULT_SERVER
    rrsets = True


    def _call(self, path: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
        body = {"secretapikey": self.secrets["secret_api_key"].value, "apikey": self.secrets["api_key"].value,
                **(fields or {})}
        resp = self.send("POST", self.base + path, body=body)
        return self.expect(resp, lambda status, payload: status == 200 and isinstance(payload, dict)
                           and payload.get("status") == "SUCCESS", classify_error)

    @staticmethod
    def _by_name(action: str, name: Name, rtype: str) -> str:
        return f"/dns/{action}/{quote(name.zone)}/{rtype}" + (f"/{quote(name.sub)}" if name.sub else "")

    def fetch(self, name: Name, rtype: str) -> list[Record]:
        found = self._call(self._by_name("retrieveByNameType", name, rtype))
        return [Record(str(r.get("content")), str(r.get("id")), _seconds(r.get("ttl")))
                for r in found.get("records") or [] if r.get("type") == rtype and r.get("name") == name.fqdn]

    def create(self, name: Name, rtype: str, ip: str) -> None:
        self._call(f"/dns/create/{quote(name.zone)}", {"name": name.sub, "type": rtype, "content": ip,
                                                      "ttl": str(self.ttl(DEFAULT_TTL))})

    def change(self, name: Name, rtype: str, records: list[Record], ip: str) -> None:
        self._call(self._by_name("editByNameType", name, rtype),
                   {"content": ip, "ttl": str(self.ttl(records[0].ttl or DEFAULT_TTL))})
