"""DNSPod on Tencent Cloud API 3.0 (dnspod 2021-03-23) with a SecretId/SecretKey pair, signed TC3-HMAC-SHA256.

Every call is POST / with a JSON body, the action in X-TC-Action, the version in X-TC-Version and the
time in X-TC-Timestamp. Per name and family: DescribeRecordList (Subdomain, RecordType, RecordLine), then
CreateRecord when there is none (DNSPod answers the error ResourceNotFound.NoDataOfRecord for an empty
list) or ModifyRecord for each record holding another value. Errors arrive with HTTP 200 as
{"Response": {"Error": {"Code", "Message"}, "RequestId"}}.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

from natlink.ddns.base import ProviderResult, fatal, short, transient
from natlink.ddns.recordapi import Name, Record, RecordApiProvider, parse_json
from natlink.ddns.signing import tc3_authorization

DEFAULT_SERVER = "https://dnspod.tencentcloudapi.com"
SERVICE = "dnspod"
VERSION = "2021-03-23"
DEFAULT_TTL = 600
DEFAULT_LINE = "默认"  # the "default" resolution line every DNSPod plan has
CONTENT_TYPE = "application/json; charset=utf-8"
NO_RECORDS = "ResourceNotFound.NoDataOfRecord"

_ZONE = ("InvalidParameterValue.DomainNotExists", "ResourceNotFound.NoDataOfDomain",
         "FailedOperation.DomainOwnedByOtherUser", "InvalidParameter.DomainInvalid",
         "InvalidParameter.DomainNotExists")


def _code(payload: Any) -> str:
    error = (payload.get("Response") or {}).get("Error") if isinstance(payload, dict) else None
    return str(error.get("Code", "")) if isinstance(error, dict) else ""


def classify_error(status: int, payload: Any, body: str, headers: dict[str, str]) -> ProviderResult:
    """Map a failed Tencent Cloud answer to a typed outcome (pure)."""
    code = _code(payload)
    detail = f"{code}: {payload['Response']['Error'].get('Message')}" if code else (short(body) or f"HTTP {status}")
    if code == "AuthFailure.SignatureExpire":
        return transient("clock", f"DNSPod rejected the request time ({detail}); set the system clock (NTP)")
    if code.startswith(("AuthFailure", "UnauthorizedOperation")):
        return fatal("auth", f"DNSPod refused the API key ({detail}); check secret_id / secret_key_file and "
                             "that the key's CAM policy allows QcloudDNSPodFullAccess")
    if code.startswith("RequestLimitExceeded"):
        return transient("rate-limited", f"DNSPod rate limit ({detail}); natlink waits before retrying")
    if code.startswith(_ZONE):
        return fatal("nozone", f"DNSPod does not host this domain for this account ({detail}); fix zone / "
                               "hostnames or add the domain in the DNSPod console", per_name=True)
    if code.startswith(("InternalError", "ResourceUnavailable")) or status >= 500:
        return transient("server", f"DNSPod had a server problem ({detail}); natlink retries later")
    if code:
        return fatal("rejected", f"DNSPod rejected the request ({detail}); check hostnames, zone, ttl and "
                                 "record_line")
    return transient("unexpected", f"DNSPod answered HTTP {status} ({detail}); retrying later")


def _failed(status: int, payload: Any) -> bool:
    return status != 200 or not isinstance(payload, dict) or not isinstance(payload.get("Response"), dict) \
        or "Error" in payload["Response"]


class DnspodProvider(RecordApiProvider):
    name = "dnspod"
    label = "DNSPod"
    default_server = DEFAULT_SERVER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = str(self.option("record_line", DEFAULT_LINE))

    def _call(self, action: str, params: dict[str, Any], missing_ok: bool = False) -> dict[str, Any]:
        payload = json.dumps(params).encode()
        timestamp = int(time.time())
        signed = {"content-type": CONTENT_TYPE, "host": urlsplit(self.base).netloc, "x-tc-action": action}
        auth = tc3_authorization(str(self.option("secret_id")), self.secrets["secret_key"].value, SERVICE,
                                 timestamp, "POST", "", signed, payload)
        resp = self.send("POST", self.base + "/", raw=payload, headers={
            "Content-Type": CONTENT_TYPE, "X-TC-Action": action, "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp), "Authorization": auth})
        if missing_ok and resp.status == 200 and _code(parse_json(resp.text())) == NO_RECORDS:
            return {}  # DescribeRecordList's way of saying "no such record"
        return self.expect(resp, lambda status, parsed: not _failed(status, parsed), classify_error)["Response"]

    def fetch(self, name: Name, rtype: str) -> list[Record]:
        found = self._call("DescribeRecordList", {"Domain": name.zone, "Subdomain": name.rel(),
                                                  "RecordType": rtype, "RecordLine": self.line}, missing_ok=True)
        return [Record(str(r.get("Value")), str(r.get("RecordId")), r.get("TTL"))
                for r in found.get("RecordList") or [] if r.get("Type") == rtype and r.get("Name") == name.rel()]

    def create(self, name: Name, rtype: str, ip: str) -> None:
        self._call("CreateRecord", {"Domain": name.zone, "SubDomain": name.rel(), "RecordType": rtype,
                                    "RecordLine": self.line, "Value": ip, "TTL": self.ttl(DEFAULT_TTL)})

    def change(self, name: Name, rtype: str, records: list[Record], ip: str) -> None:
        record = records[0]
        self._call("ModifyRecord", {"Domain": name.zone, "SubDomain": name.rel(), "RecordType": rtype,
                                    "RecordLine": self.line, "Value": ip, "RecordId": int(record.id),
                                    "TTL": self.ttl(record.ttl or DEFAULT_TTL)})
