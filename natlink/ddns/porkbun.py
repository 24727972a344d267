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

from natlink.ddns.base import ProviderResult, fatal, retry_after_seconds, short, transient
from natlink.ddns.recordapi import Name, Record, RecordApiProvider

DEFAULT_SERVER = "https://api.porkbun.com/api/json/v3"
DEFAULT_TTL = 600  # Porkbun's minimum and default


def classify_error(status: int, payload: Any, body: str, headers: dict[str, str]) -> ProviderResult:
    """Map a failed Porkbun answer to a typed outcome (pure)."""
    message = str(payload.get("message", "")) if isinstance(payload, dict) else ""
    detail = message or short(body) or f"HTTP {status}"
    lowered = message.lower()
    if "api key" in lowered or (status in (401, 403) and "opt" not in lowered):
        return fatal("auth", f"Porkbun refused the API keys ({detail}); check api_key_* and secret_api_key_*")
    if "opted in" in lowered or "api access" in lowered:
        return fatal("api-access", f"Porkbun: {detail}; switch on API ACCESS for this domain in Porkbun's "
                                   "domain management", per_name=True)
    if status in (429, 503) or "rate limit" in lowered or "too many" in lowered:
        return transient("rate-limited", f"Porkbun rate limit ({detail}); natlink waits before retrying",
                         retry_after_seconds(headers.get("retry-after")))
    if "domain" in lowered and ("invalid" in lowered or "not" in lowered):
        return fatal("nozone", f"Porkbun: {detail}; fix zone / hostnames", per_name=True)
    if status >= 500:
        return transient(f"http-{status}", f"Porkbun answered HTTP {status} ({detail}); natlink retries later")
    return fatal("rejected", f"Porkbun rejected the request ({detail}); check hostnames, zone and ttl")


class PorkbunProvider(RecordApiProvider):
    name = "porkbun"
    label = "Porkbun"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        server = str(self.option("server", DEFAULT_SERVER)).rstrip("/")
        self.base = server if "://" in server else "https://" + server

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
        return [Record(str(r.get("content")), str(r.get("id")), int(r.get("ttl") or DEFAULT_TTL))
                for r in found.get("records") or [] if r.get("type") == rtype and r.get("name") == name.fqdn]

    def create(self, name: Name, rtype: str, ip: str) -> None:
        self._call(f"/dns/create/{quote(name.zone)}", {"name": name.sub, "type": rtype, "content": ip,
                                                      "ttl": str(self.ttl(DEFAULT_TTL))})

    def change(self, name: Name, rtype: str, records: list[Record], ip: str) -> None:
        self._call(self._by_name("editByNameType", name, rtype),
                   {"content": ip, "ttl": str(self.ttl(records[0].ttl or DEFAULT_TTL))})
