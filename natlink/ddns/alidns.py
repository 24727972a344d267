"""AliDNS (Alibaba Cloud DNS, API version 2015-01-09) with an AccessKey pair, signed ACS3-HMAC-SHA256.

RPC style: the action and its parameters travel in the query string, the signature in the Authorization
header. Per name and family: DescribeSubDomainRecords (SubDomain = full name, Type = A/AAAA), then
AddDomainRecord when there is none or UpdateDomainRecord for each record holding another value. Errors come
as {"Code", "Message", "RequestId"} with an HTTP status; codes decide fatal (key, permission, domain) vs
transient (throttling, 5xx, clock skew).
"""

from __future__ import annotations

import secrets as pyrandom
import time
from typing import Any
from urllib.parse import urlsplit

from natlink.ddns.base import ProviderResult, fatal, short, transient
from natlink.ddns.recordapi import Name, Record, RecordApiProvider
from natlink.ddns.signing import acs3_authorization, canonical_query, sha256_hex

DEFAULT_SERVER = "https://alidns.aliyuncs.com"
VERSION = "2015-01-09"
DEFAULT_TTL = 600

_AUTH = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "IncompleteSignature", "Forbidden",
         "InvalidSecurityToken", "NoPermission")
_ZONE = ("InvalidDomainName.NoExist", "IncorrectDomainUser", "DomainNotExist", "InvalidDomainName.Format")


def classify_error(status: int, payload: Any, body: str, headers: dict[str, str]) -> ProviderResult:
    """Map a failed AliDNS answer to a typed outcome (pure)."""
    code = str(payload.get("Code", "")) if isinstance(payload, dict) else ""
    detail = f"{code}: {payload.get('Message')}" if code else (short(body) or f"HTTP {status}")
    if code.startswith(_AUTH) or status in (401, 403):
        return fatal("auth", f"AliDNS refused the AccessKey ({detail}); check access_key_id / "
                             "access_key_secret_file and that the RAM user may use AliyunDNSFullAccess")
    if code.startswith("InvalidTimeStamp"):
        return transient("clock", f"AliDNS rejected the request time ({detail}); set the system clock (NTP)")
    if code == "SignatureNonceUsed":
        return transient("nonce", f"AliDNS saw this request's nonce before ({detail}); natlink retries with a "
                                  "new one")
    if code.startswith("Throttling") or status == 429:
        return transient("rate-limited", f"AliDNS throttled natlink ({detail}); natlink waits before retrying")
    if code.startswith(_ZONE):
        return fatal("nozone", f"AliDNS does not host this domain for this account ({detail}); fix zone / "
                               "hostnames or add the domain in the Alibaba Cloud DNS console", per_name=True)
    if status >= 500 or code in ("ServiceUnavailable", "InternalError"):
        return transient(f"http-{status}", f"AliDNS answered HTTP {status} ({detail}); natlink retries later")
    if 400 <= status < 500:
        return fatal("rejected", f"AliDNS rejected the request ({detail}); check hostnames, zone and ttl")
    return transient("unexpected", f"AliDNS answered HTTP {status} ({detail}); retrying later")


class AlidnsProvider(RecordApiProvider):
    name = "alidns"
    label = "AliDNS"
    default_server = DEFAULT_SERVER


    def _call(self, method: str, action: str, params: dict[str, str]) -> dict[str, Any]:
        query = canonical_query(params)
        signed = {
            "host": urlsplit(self.base).netloc,
            "x-acs-action": action,
            "x-acs-content-sha256": sha256_hex(b""),
            "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "x-acs-signature-nonce": pyrandom.token_hex(16),
            "x-acs-version": VERSION,
        }
        auth = acs3_authorization(str(self.option("access_key_id")), self.secrets["access_key_secret"].value,
                                  method, "/", query, signed, signed["x-acs-content-sha256"])
        headers = {k: v for k, v in signed.items() if k != "host"}  # natlink.net.http sends Host itself
        resp = self.send(method, f"{self.base}/?{query}", headers={**headers, "Authorization": auth})
        return self.expect(resp, lambda status, payload: status == 200 and isinstance(payload, dict)
                           and "Code" not in payload, classify_error)

    def fetch(self, name: Name, rtype: str) -> list[Record]:
        found = self._call("GET", "DescribeSubDomainRecords", {
            "SubDomain": name.fqdn, "DomainName": name.zone, "Type": rtype, "PageSize": "100"})
        rows = (found.get("DomainRecords") or {}).get("Record") or []
        # SubDomain also matches deeper names on some accounts: keep exactly this RR and type.
        return [Record(str(r.get("Value")), str(r.get("RecordId")), r.get("TTL")) for r in rows
                if r.get("Type") == rtype and r.get("RR") == name.rel()]

    def create(self, name: Name, rtype: str, ip: str) -> None:
        self._call("POST", "AddDomainRecord", {"DomainName": name.zone, "RR": name.rel(), "Type": rtype,
                                               "Value": ip, "TTL": str(self.ttl(DEFAULT_TTL))})

    def change(self, name: Name, rtype: str, records: list[Record], ip: str) -> None:
        record = records[0]
        self._call("POST", "UpdateDomainRecord", {"RecordId": record.id, "RR": name.rel(), "Type": rtype,
                                                  "Value": ip, "TTL": str(self.ttl(record.ttl or DEFAULT_TTL))})
