"""Cloudflare API v4 with a scoped API token (Zone:DNS:Edit).

Per hostname and family: find the zone (the `zone` option, else the longest suffix of the name that the
token can see), list the A/AAAA records of the name, create one if missing, otherwise PATCH only the
content of records that differ (their TTL and proxied flag stay as the user set them in the dashboard,
unless the entry sets ttl/proxied). A record already holding the address costs no write.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from natlink.ddns import urls
from natlink.ddns.base import Provider, ProviderResult, combine, fatal, retry_after_seconds, short, success, transient
from natlink.net.http import HttpError

log = logging.getLogger(__name__)

DEFAULT_SERVER = "https://api.cloudflare.com/client/v4"
RTYPE = {4: "A", 6: "AAAA"}


class _Stop(Exception):
    """Carries a ProviderResult out of a chain of API calls."""

    def __init__(self, result: ProviderResult) -> None:
        super().__init__(result.message)
        self.result = result


def base_url(server: str | None) -> str:
    return urls.base_url(server, "/client/v4") if server else DEFAULT_SERVER


def classify_error(status: int, payload: Any, body: str, retry_after: str | None) -> ProviderResult:
    """Map a failed Cloudflare answer to a typed outcome (pure)."""
    errors = payload.get("errors") if isinstance(payload, dict) else None
    detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict)) if errors else ""
    detail = detail or short(body) or f"HTTP {status}"
    codes = {e.get("code") for e in errors or [] if isinstance(e, dict)}
    if status in (401, 403) or codes & {9109, 10000, 9103, 6003, 6111}:
        return fatal("auth", f"Cloudflare refused the API token ({detail}); create a token with Zone:DNS:Edit for "
                             "this zone and point api_token_* at it")
    if status == 429 or 971 in codes:
        return transient("rate-limited", f"Cloudflare rate limit ({detail}); natlink waits before retrying",
                         retry_after_seconds(retry_after))
    if status >= 500:
        return transient(f"http-{status}", f"Cloudflare answered HTTP {status} ({detail}); natlink retries later")
    if status in (400, 404, 405, 409, 422) or errors:
        return fatal("rejected", f"Cloudflare rejected the request ({detail}); check hostnames, zone, ttl and proxied")
    return transient("unexpected", f"Cloudflare answered HTTP {status} ({detail}); retrying later")


class CloudflareProvider(Provider):
    name = "cloudflare"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base = base_url(self.option("server"))
        self._zones: dict[str, str] = {}

    def _call(self, method: str, path: str, params: dict[str, str] | None = None,
              body: dict[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        try:
            resp = self.http.request(method, self.base + path, params=params, headers=headers, body=data,
                                     bearer=self.secrets["api_token"])
        except HttpError as exc:
            raise _Stop(transient(exc.kind, self.safe(f"Cloudflare: {exc.message}; natlink retries later"))) from None
        text = resp.text()
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = None
        if resp.status == 200 and isinstance(payload, dict) and payload.get("success") is True:
            return payload.get("result")
        result = classify_error(resp.status, payload, text, resp.headers.get("retry-after"))
        raise _Stop(ProviderResult(result.outcome, result.kind, self.safe(result.message), result.retry_after))

    def zone_id(self, hostname: str) -> str:
        name = hostname.rstrip(".").lower()
        zone = self.option("zone")
        candidates = [str(zone).rstrip(".").lower()] if zone else [
            ".".join(name.split(".")[i:]) for i in range(len(name.split(".")) - 1)]
        if name in self._zones:
            return self._zones[name]
        for candidate in candidates:
            found = self._call("GET", "/zones", params={"name": candidate})
            if isinstance(found, list) and found:
                self._zones[name] = str(found[0]["id"])  # per hostname: verify() needs no second walk
                return self._zones[name]
        raise _Stop(fatal("nozone", f"Cloudflare: no zone for {hostname} is visible to this token (tried "
                                    f"{', '.join(candidates)}); set zone = \"...\" or give the token access to it"))

    def update(self, addresses: dict[int, str]) -> ProviderResult:
        results = []
        for hostname in self.hostnames:
            for family, ip in sorted(addresses.items()):
                try:
                    results.append(self._one(hostname, RTYPE[family], ip).about(hostname, family))
                except _Stop as stop:
                    results.append(stop.result.about(hostname, family))
                if results[-1].kind == "fatal":
                    return combine(results)
        return combine(results)

    def _one(self, hostname: str, rtype: str, ip: str) -> ProviderResult:
        name = hostname.rstrip(".").lower()
        zid = self.zone_id(name)
        records = self._call("GET", f"/zones/{zid}/dns_records", params={"type": rtype, "name": name}) or []
        ttl, proxied = self.option("ttl"), self.option("proxied")
        if not records:
            body = {"type": rtype, "name": name, "content": ip, "ttl": int(ttl) if ttl else 1,
                    "proxied": bool(proxied)}
            self._call("POST", f"/zones/{zid}/dns_records", body=body)
            return success("created", f"{name} {rtype}: created ({ip})")
        changed = 0
        for record in records:
            patch: dict[str, Any] = {}
            if record.get("content") != ip:
                patch["content"] = ip
            if ttl and record.get("ttl") != int(ttl):
                patch["ttl"] = int(ttl)
            if proxied is not None and record.get("proxied") != bool(proxied):
                patch["proxied"] = bool(proxied)
            if patch:
                self._call("PATCH", f"/zones/{zid}/dns_records/{record['id']}", body=patch)
                changed += 1
        if changed:
            return success("good", f"{name} {rtype}: updated ({ip})")
        return success("nochg", f"{name} {rtype}: already {ip}")

    def verify(self, addresses: dict[int, str]) -> str | None:
        """Read the records back through the API (Cloudflare is the authoritative source)."""
        for hostname in self.hostnames:
            for family, ip in addresses.items():
                try:
                    records = self._call("GET", f"/zones/{self.zone_id(hostname)}/dns_records",
                                         params={"type": RTYPE[family], "name": hostname.rstrip(".").lower()})
                except _Stop as stop:
                    return f"could not read {hostname} back: {stop.result.message}"
                contents = sorted({r.get("content") for r in records or []})
                if contents != [ip]:
                    return f"{hostname} {RTYPE[family]} reads back as {', '.join(map(str, contents)) or 'nothing'}, not {ip}"
        return None
