"""DNSPod (Tencent Cloud API 3.0) against a strict local fake that recomputes the TC3-HMAC-SHA256 signature
with its own implementation of the documented algorithm, checks the X-TC-* headers, the JSON body of each
action, and answers in the documented {"Response": …} shapes, errors included (HTTP 200 + Error.Code).
The signing code is checked against the "Signature v3" document's published example.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from api_fakes import IP, IP2, IP6, PATH_ANY, FakeBase, answer, assert_secret_free, provider_for, valid_address
from natlink.ddns.dnspod import DnspodProvider, classify_error
from natlink.ddns.signing import tc3_authorization

SECRET_ID, SECRET_KEY = "AKIDtestSecretId0001", "tc-SecretKey-1a2b3c4d5e"
AUTH_RE = re.compile(r"^TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d\d-\d\d)/([a-z]+)/tc3_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")
LINE = "默认"
FIELDS = {  # action -> (required, optional) body fields, from the dnspod 2021-03-23 API reference
    "DescribeRecordList": ({"Domain"}, {"DomainId", "Subdomain", "RecordType", "RecordLine", "Limit", "Offset"}),
    "CreateRecord": ({"Domain", "RecordType", "RecordLine", "Value"}, {"SubDomain", "TTL", "MX", "Weight"}),
    "ModifyRecord": ({"Domain", "RecordType", "RecordLine", "Value", "RecordId"}, {"SubDomain", "TTL", "MX"}),
}


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


@dataclass
class DnspodFake(FakeBase):
    zones: tuple[str, ...] = ("example.com",)

    def error(self, code: str, message: str) -> Response:
        return answer({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "req-err"}})

    def authenticate(self, request: Request) -> Response | None:
        self.check_agent(request)
        m = AUTH_RE.match(request.headers.get("Authorization", ""))
        if not m:
            self.problem(f"Authorization {request.headers.get('Authorization')!r}")
            return self.error("AuthFailure.InvalidAuthorization", "Authorization is invalid.")
        secret_id, date, service, signed, signature = m.groups()
        names = signed.split(";")
        if not {"content-type", "host"} <= set(names) or names != sorted(names):
            self.problem(f"SignedHeaders {signed}: content-type and host must be signed, sorted")
        if request.headers.get("X-TC-Version") != "2021-03-23":
            self.problem(f"X-TC-Version {request.headers.get('X-TC-Version')}")
        if request.headers.get("Content-Type") != "application/json; charset=utf-8" \
                and request.headers.get("Content-Type") != "application/json":
            self.problem(f"Content-Type {request.headers.get('Content-Type')}")
        if service != "dnspod":
            self.problem(f"service {service} in the credential scope")
        if secret_id != SECRET_ID:
            return self.error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        try:
            stamp = int(request.headers.get("X-TC-Timestamp", ""))
        except ValueError:
            return self.error("InvalidParameter", "X-TC-Timestamp is invalid.")
        if abs(stamp - time.time()) > 300:
            return self.error("AuthFailure.SignatureExpire", "The signature has expired.")
        if datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d") != date:
            self.problem(f"scope date {date} is not the UTC date of X-TC-Timestamp")
        canonical_headers = "".join(f"{n}:{request.headers.get(n, '').strip().lower()}\n" for n in names)
        canonical = "\n".join(["POST", "/", "", canonical_headers, signed,
                               hashlib.sha256(request.get_data()).hexdigest()])
        to_sign = f"TC3-HMAC-SHA256\n{stamp}\n{date}/{service}/tc3_request\n" \
                  f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = _hmac(_hmac(_hmac(("TC3" + SECRET_KEY).encode(), date), service), "tc3_request")
        if hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest() != signature:
            return self.error("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")
        return None

    def handler(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/":
            self.problem(f"{request.method} {request.path}")
            return self.error("InvalidAction", "The action is invalid.")
        refused = self.authenticate(request)
        if refused is not None:
            return refused
        injected = self.injected()
        if injected is not None:
            return injected
        action = request.headers.get("X-TC-Action", "")
        body = self.json_body(request)
        self.requests.append(("POST", action))
        if action not in FIELDS or not isinstance(body, dict):
            return self.error("InvalidAction", f"The action {action} is invalid.")
        required, optional = FIELDS[action]
        if required - set(body) or set(body) - required - optional:
            self.problem(f"{action} fields {sorted(body)}")
            return self.error("MissingParameter", "A required parameter is missing.")
        if body["Domain"] not in self.zones:
            return self.error("InvalidParameterValue.DomainNotExists", "The domain does not exist.")
        return getattr(self, action)(body)

    def DescribeRecordList(self, b: dict[str, Any]) -> Response:
        rows = [{"RecordId": int(rid), "Value": r["value"], "Status": "ENABLE", "UpdatedOn": "2026-12-01 10:00:00",
                 "Name": r["name"], "Line": LINE, "LineId": "0", "Type": r["type"], "Weight": None,
                 "MonitorStatus": "", "Remark": "", "TTL": r["ttl"], "MX": 0, "DefaultNS": False}
                for rid, r in self.records.items()
                if r["name"] == b.get("Subdomain", r["name"]) and r["type"] == b.get("RecordType", r["type"])
                and b.get("RecordLine", LINE) == LINE]
        if not rows:
            return self.error("ResourceNotFound.NoDataOfRecord", "记录列表为空。")
        return answer({"Response": {"RecordCountInfo": {"SubdomainCount": len(rows), "ListCount": len(rows),
                                                        "TotalCount": len(rows)},
                                    "RecordList": rows, "RequestId": "req-list"}})

    def CreateRecord(self, b: dict[str, Any]) -> Response:
        if not valid_address(b["RecordType"], b["Value"]) or b["RecordLine"] != LINE:
            return self.error("InvalidParameter.RecordValueInvalid", "记录值无效。")
        rid = self.add(b.get("SubDomain", "@"), b["RecordType"], b["Value"], int(b.get("TTL", 600)))
        return answer({"Response": {"RecordId": int(rid), "RequestId": "req-create"}})

    def ModifyRecord(self, b: dict[str, Any]) -> Response:
        record = self.records.get(str(b["RecordId"]))
        if record is None or not isinstance(b["RecordId"], int):
            return self.error("InvalidParameter.RecordIdInvalid", "记录编号错误。")
        record.update(name=b.get("SubDomain", "@"), value=b["Value"], ttl=int(b.get("TTL", record["ttl"])))
        return answer({"Response": {"RecordId": b["RecordId"], "RequestId": "req-modify"}})


def _provider(tmp_path: Path, httpserver: Any, fake: DnspodFake, extra: str = "", key: str = SECRET_KEY,
              secret_id: str = SECRET_ID, hostnames: tuple[str, ...] = ("home.example.com",)) -> DnspodProvider:
    return provider_for(DnspodProvider, tmp_path, httpserver, fake, "/", {"secret_key": key},
                        f'secret_id = "{secret_id}"\n{extra}', hostnames)


def test_signing_matches_the_documented_example() -> None:
    """"Signature v3": DescribeInstances on cvm at 1551113065 with the documentation's example key pair."""
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    auth = tc3_authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "cvm",
                             1551113065, "POST", "", {"Content-Type": "application/json; charset=utf-8",
                                                      "Host": "cvm.tencentcloudapi.com"}, payload)
    assert auth == ("TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
                    "SignedHeaders=content-type;host, "
                    "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")


def test_creates_missing_records_per_family(tmp_path: Path, httpserver: Any) -> None:
    fake = DnspodFake()
    result = _provider(tmp_path, httpserver, fake).update({4: IP, 6: IP6})
    assert (result.outcome, result.kind) == ("created", "success"), result.message
    assert fake.values("home", "A") == [IP] and fake.values("home", "AAAA") == [IP6]
    assert fake.requests == [("POST", "DescribeRecordList"), ("POST", "CreateRecord")] * 2
    assert fake.problems == []


def test_modifies_only_the_family_that_differs(tmp_path: Path, httpserver: Any) -> None:
    fake = DnspodFake()
    fake.add("home", "A", IP2, ttl=300)
    fake.add("home", "AAAA", IP6)
    result = _provider(tmp_path, httpserver, fake).update({4: IP, 6: IP6})
    assert result.outcome == "good" and fake.values("home", "A") == [IP] and fake.values("home", "AAAA") == [IP6]
    assert [a for _, a in fake.requests] == ["DescribeRecordList", "ModifyRecord", "DescribeRecordList"]
    assert next(r for r in fake.records.values() if r["type"] == "A")["ttl"] == 300
    assert fake.problems == []


def test_apex_and_no_write_when_unchanged(tmp_path: Path, httpserver: Any) -> None:
    fake = DnspodFake()
    fake.add("@", "A", IP)
    provider = _provider(tmp_path, httpserver, fake, hostnames=("example.com",))
    assert provider.update({4: IP}).outcome == "nochg"
    assert fake.requests == [("POST", "DescribeRecordList")]
    assert provider.verify({4: IP}) is None
    assert provider.verify({4: IP2}) == f"example.com A reads back as {IP}, not {IP2}"


@pytest.mark.parametrize("key, secret_id", [("wrong-key-123456", SECRET_ID), (SECRET_KEY, "AKIDunknown")])
def test_refused_keys_are_fatal_and_never_shown(tmp_path: Path, httpserver: Any, key: str, secret_id: str) -> None:
    result = _provider(tmp_path, httpserver, DnspodFake(), key=key, secret_id=secret_id).update({4: IP})
    assert (result.outcome, result.kind) == ("auth", "fatal")
    assert_secret_free({"k": key}, result.message, result)


def test_unknown_domain_is_fatal_for_that_name_only(tmp_path: Path, httpserver: Any) -> None:
    fake = DnspodFake()
    result = _provider(tmp_path, httpserver, fake, hostnames=("a.other.org", "b.example.com")).update({4: IP})
    first, second = result.parts
    assert (first.outcome, first.per_name, second.outcome) == ("nozone", True, "created")
    assert fake.values("b", "A") == [IP]


@pytest.mark.parametrize("code, outcome, kind", [
    ("RequestLimitExceeded", "rate-limited", "transient"),
    ("InternalError", "server", "transient"),
    ("AuthFailure.SignatureExpire", "clock", "transient"),
    ("UnauthorizedOperation", "auth", "fatal"),
    ("LimitExceeded.RecordTtlLimit", "rejected", "fatal"),
    ("FailedOperation.DomainOwnedByOtherUser", "nozone", "fatal"),
])
def test_error_answers(tmp_path: Path, httpserver: Any, code: str, outcome: str, kind: str) -> None:
    payload = {"Response": {"Error": {"Code": code, "Message": "m"}, "RequestId": "r"}}
    result = _provider(tmp_path, httpserver, DnspodFake(fail=(200, payload, {}))).update({4: IP})
    assert (result.outcome, result.kind) == (outcome, kind), result.message
    assert classify_error(200, payload, json.dumps(payload), {}).outcome == outcome


def test_gateway_error_without_json_is_transient(tmp_path: Path, httpserver: Any) -> None:
    result = _provider(tmp_path, httpserver, DnspodFake(fail=(502, "<html>bad gateway</html>", {}))).update({4: IP})
    assert (result.outcome, result.kind) == ("server", "transient")


@pytest.mark.parametrize("tamper, code", [("body", "AuthFailure.SignatureFailure"),
                                          ("stale", "AuthFailure.SignatureExpire")])
def test_fake_refuses_a_tampered_or_stale_request(httpserver: Any, tamper: str, code: str) -> None:
    """The fake's checks are real: a body changed after signing, or a 10-minute-old timestamp, is refused."""
    fake = DnspodFake()
    httpserver.expect_request(PATH_ANY).respond_with_handler(fake.handler)
    stamp = int(time.time()) - (600 if tamper == "stale" else 0)
    signed_body = b'{"Domain": "example.com"}'
    headers = {"Content-Type": "application/json; charset=utf-8", "Host": f"localhost:{httpserver.port}",
               "X-TC-Action": "DescribeRecordList"}
    auth = tc3_authorization(SECRET_ID, SECRET_KEY, "dnspod", stamp, "POST", "", headers, signed_body)
    sent = b'{"Domain": "example.org"}' if tamper == "body" else signed_body
    req = urllib.request.Request(httpserver.url_for("/"), data=sent, method="POST", headers={
        **headers, "X-TC-Version": "2021-03-23", "X-TC-Timestamp": str(stamp), "Authorization": auth})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["Response"]["Error"]["Code"] == code
