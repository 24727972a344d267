"""The shape every DNS-record API provider shares (AliDNS, DNSPod, deSEC, Porkbun, Gandi, DigitalOcean).

Per hostname and family (A, AAAA): read the records of that name and type, create one if there is none,
write only when a record differs from the address, and leave the other family's records alone. A provider
module supplies three calls (fetch / create / change) and one pure error classifier; this module supplies
the loop, the zone split, the read-back for `verify` and the HTTP/JSON plumbing that keeps secrets out of
every message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Callable

from natlink.ddns.base import Provider, ProviderResult, combine, fatal, retry_after_seconds, success, transient
from natlink.ddns.urls import base_url
from natlink.net.http import HttpError, HttpResponse
from natlink.secrets import Secret

log = logging.getLogger(__name__)

RTYPE = {4: "A", 6: "AAAA"}


class Stop(Exception):
    """Carries a ProviderResult out of a chain of API calls."""

    def __init__(self, result: ProviderResult) -> None:
        super().__init__(result.message)
        self.result = result


@dataclass(frozen=True)
class Name:
    """A hostname split at its zone: fqdn "home.example.com" = sub "home" + zone "example.com"."""

    fqdn: str
    zone: str
    sub: str  # "" at the zone apex

    def rel(self, apex: str = "@") -> str:
        """The relative name as the API spells it (most use "@" for the apex)."""
        return self.sub or apex


@dataclass(frozen=True)
class Record:
    value: str
    id: str = ""
    ttl: int | None = None


def split_name(hostname: str, zone: str | None) -> Name:
    """Split at the `zone` option, else before the last two labels (set `zone` for e.g. example.com.cn)."""
    fqdn = hostname.rstrip(".").lower()
    if zone:
        z = str(zone).rstrip(".").lower()
        if fqdn != z and not fqdn.endswith("." + z):
            raise ValueError(f"hostname {hostname} is not inside zone {zone}; fix zone or hostnames")
    else:
        z = ".".join(fqdn.split(".")[-2:])
    return Name(fqdn, z, fqdn[: -len(z)].rstrip(".") if fqdn != z else "")


def plan(records: list[Record], ip: str) -> str:
    """What to do for one name and type (pure): 'create' (no record), 'nochg' (every record holds ip),
    'extra' (one holds ip, others hold something else: natlink leaves records it would have to delete),
    or 'change' (none holds ip: rewrite one record, or the whole RRset where the API works on sets)."""
    if not records:
        return "create"
    holding = [r for r in records if r.value == ip]
    if len(holding) == len(records):
        return "nochg"
    return "extra" if holding else "change"


def _left(records: list[Record]) -> str:
    """The tail of a message naming records natlink did not touch (it deletes nothing it did not create)."""
    values = sorted({r.value for r in records})
    return (f"; also holds {', '.join(values)}, left alone (remove it at the provider if it is stale)"
            if values else "")


@dataclass(frozen=True)
class Hints:
    """What the user should fix, per kind of refusal, in a provider's own words."""

    auth: str  # the credentials were refused
    zone: str  # the domain is not in the account (or not visible to these credentials)
    rejected: str  # the request itself was refused (name, ttl, ...)


def by_status(label: str, status: int, detail: str, retry_after: str | None, hints: Hints) -> ProviderResult:
    """The usual REST mapping (pure): 401/403 stop, 404 stops the name, 429 and 5xx wait, other 4xx stop."""
    if status in (401, 403):
        return fatal("auth", f"{label} refused the credentials ({detail}); {hints.auth}")
    if status == 429:
        return transient("rate-limited", f"{label} rate limit ({detail}); natlink waits before retrying",
                         retry_after_seconds(retry_after))
    if status == 404:
        return fatal("nozone", f"{label}: {hints.zone} ({detail})", per_name=True)
    if status >= 500:
        return transient(f"http-{status}", f"{label} answered HTTP {status} ({detail}); natlink retries later")
    return fatal("rejected", f"{label} rejected the request (HTTP {status}: {detail}); {hints.rejected}")


def parse_json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


class RecordApiProvider(Provider):
    """Base for record APIs. Subclasses set `label` and implement fetch/create/change."""

    label = "DNS API"
    default_server = ""  # the API's base URL; the `server` option overrides it (tests, regional endpoints)
    zone_lookup = False  # True: the subclass overrides find_zone (an API that can name the zone of a host)
    rrsets = False  # True: change() sets the whole RRset of the name and type; False: it rewrites records[0]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._names: dict[str, Name] = {}
        self.base = base_url(str(self.option("server", self.default_server)))

    # ---- to implement -------------------------------------------------------------------------------

    def fetch(self, name: Name, rtype: str) -> list[Record]:  # pragma: no cover - interface
        raise NotImplementedError

    def create(self, name: Name, rtype: str, ip: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def change(self, name: Name, rtype: str, records: list[Record], ip: str) -> None:  # pragma: no cover
        """Publish ip where no record holds it: rewrite records[0] (or the RRset, see `rrsets`)."""
        raise NotImplementedError

    def find_zone(self, fqdn: str) -> str | None:  # pragma: no cover - only where zone_lookup
        return None

    # ---- shared -------------------------------------------------------------------------------------

    def split(self, hostname: str) -> Name:
        key = hostname.rstrip(".").lower()
        if key not in self._names:
            zone = self.option("zone")
            if not zone and self.zone_lookup:
                zone = self.find_zone(key)
            try:
                self._names[key] = split_name(key, zone)
            except ValueError as exc:
                raise Stop(fatal("config", f"{self.label}: {exc}", per_name=True)) from None
        return self._names[key]

    def ttl(self, default: int) -> int:
        ttl = self.option("ttl")
        return int(ttl) if ttl else default

    def update_name(self, hostname: str, addresses: dict[int, str]) -> ProviderResult:
        """Each family on its own: A and AAAA are separate records, so one never touches the other."""
        results: list[ProviderResult] = []
        for family, ip in sorted(addresses.items()):
            try:
                result = self.sync(hostname, RTYPE[family], ip)
            except Stop as stop:
                result = stop.result
            results.append(result.about(hostname, family))
            if result.kind != "success":
                break  # the same refusal or outage would answer the other family too
        return combine(results)

    def sync(self, hostname: str, rtype: str, ip: str) -> ProviderResult:
        name = self.split(hostname)
        records = self.fetch(name, rtype)
        action = plan(records, ip)
        if action == "create":
            self.create(name, rtype, ip)
            return success("created", f"{name.fqdn} {rtype}: created ({ip})")
        if action == "change":
            self.change(name, rtype, records, ip)
            return success("good", f"{name.fqdn} {rtype}: updated ({ip}){_left([] if self.rrsets else records[1:])}")
        return success("nochg", f"{name.fqdn} {rtype}: already {ip}{_left([r for r in records if r.value != ip])}")

    def verify(self, addresses: dict[int, str]) -> str | None:
        """Read the records back through the API (the provider's authoritative copy)."""
        for hostname in self.hostnames:
            for family, ip in sorted(addresses.items()):
                try:
                    values = sorted({r.value for r in self.fetch(self.split(hostname), RTYPE[family])})
                except Stop as stop:
                    return f"could not read {hostname} back: {stop.result.message}"
                if values != [ip]:
                    return (f"{hostname} {RTYPE[family]} reads back as {', '.join(values) or 'nothing'}, "
                            f"not {ip}")
        return None

    def send(self, method: str, url: str, *, body: Any = None, raw: bytes | None = None,
             headers: dict[str, str] | None = None, bearer: Secret | None = None) -> HttpResponse:
        """One request; a failure without an HTTP answer becomes a transient Stop (message redacted)."""
        all_headers = {"Accept": "application/json", **(headers or {})}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        try:
            return self.http.request(method, url, headers=all_headers, body=data, bearer=bearer)
        except HttpError as exc:
            raise Stop(transient(exc.kind, self.safe(f"{self.label}: {exc.message}; natlink retries later"))) \
                from None

    def stop(self, result: ProviderResult) -> Stop:
        """A Stop whose message has every secret of this entry blanked."""
        return Stop(replace(result, message=self.safe(result.message)))

    def expect(self, resp: HttpResponse, ok: Callable[[int, Any], bool],
               classify: Callable[[int, Any, str, dict[str, str]], ProviderResult]) -> Any:
        """The parsed JSON answer when ok(status, payload), else a Stop with the classified failure."""
        text = resp.text()
        payload = parse_json(text)
        if ok(resp.status, payload):
            return payload
        raise self.stop(classify(resp.status, payload, text, resp.headers))
