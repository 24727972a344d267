"""AliDNS against a strict local fake of the Alibaba Cloud DNS API (RPC style, ACS3-HMAC-SHA256).

The fake recomputes the signature from the raw request with its own implementation of the documented
algorithm, checks every common header (x-acs-action/-version/-date/-signature-nonce/-content-sha256, all
signed), the parameters each action takes, and answers with the documented record and error shapes.
The signing code itself is checked against the documentation's published example.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from werkzeug import Request, Response

from api_fakes import IP, IP2, IP6, PATH_ANY, FakeBase, answer, assert_secret_free, provider_for, valid_address
from natlink.ddns.alidns import AlidnsProvider, classify_error
from natlink.ddns.signing import acs3_authorization, canonical_query, sha256_hex

KEY_ID, SECRET = "LTAI5tTestKeyId0001", "ali-Secret-9f8e7d6c5b4a"
AUTH_RE = re.compile(r"^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})$")
PARAMS = {  # action -> (required, optional) parameters, from the API reference
    "DescribeSubDomainRecords": ({"SubDomain"}, {"DomainName", "Type", "PageSize", "PageNumber", "Line"}),
    "AddDomainRecord": ({"DomainName", "RR", "Type", "Value"}, {"TTL", "Line", "Priority"}),
    "UpdateDomainRecord": ({"RecordId", "RR", "Type", "Value"}, {"TTL", "Line", "Priority"}),
}


def _enc(text: str) -> str:
    """RFC 3986 percent-encoding written out by hand (independent of natlink's quote-based one)."""
    out = []
    for byte in text.encode():
        ch = chr(byte)
        out.append(ch if ch.isascii() and (ch.isalnum() or ch in "-_.~") else f"%{byte:02X}")
    return "".join(out)


@dataclass
class AliFake(FakeBase):
    zones: tuple[str, ...] = ("example.com",)
    nonces: set[str] = field(default_factory=set)

    def error(self, status: int, code: str, message: str) -> Response:
        return answer({"RequestId": "6A1C0D55-TEST", "HostId": "alidns.aliyuncs.com", "Code": code,
                       "Message": message, "Recommend": "https://api.aliyun.com/troubleshoot"}, status)

    def authenticate(self, request: Request) -> Response | None:
        self.check_agent(request)
        m = AUTH_RE.match(request.headers.get("Authorization", ""))
        if not m:
            self.problem(f"Authorization {request.headers.get('Authorization')!r}")
            return self.error(400, "IncompleteSignature", "The request signature does not conform to standards.")
        key_id, signed, signature = m.groups()
        if key_id != KEY_ID:
            return self.error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        names = signed.split(";")
        present = {k.lower() for k in request.headers.keys() if k.lower().startswith("x-acs-")} | {"host"}
        if names != sorted(names) or set(names) != present:
            self.problem(f"SignedHeaders {signed} (must be sorted and be host plus every x-acs-* header)")
        for header in ("x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce",
                       "x-acs-content-sha256"):
            if not request.headers.get(header):
                self.problem(f"missing {header}")
        if request.headers.get("x-acs-version") != "2015-01-09":
            self.problem(f"x-acs-version {request.headers.get('x-acs-version')}")
        if request.headers.get("x-acs-content-sha256") != hashlib.sha256(request.get_data()).hexdigest():
            self.problem("x-acs-content-sha256 is not the body's SHA-256")
        try:
            sent = time.mktime(time.strptime(request.headers.get("x-acs-date", ""), "%Y-%m-%dT%H:%M:%SZ"))
            if abs(sent - time.mktime(time.gmtime())) > 900:
                return self.error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        except ValueError:
            return self.error(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
        nonce = request.headers.get("x-acs-signature-nonce", "")
        if nonce in self.nonces:
            return self.error(400, "SignatureNonceUsed", "The request signature nonce has been used.")
        self.nonces.add(nonce)
        pairs = parse_qsl(request.query_string.decode(), keep_blank_values=True)
        query = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(pairs))
        headers = "".join(f"{n}:{request.headers.get(n, '').strip()}\n" for n in names)
        canonical = "\n".join([request.method, request.path, query, headers, signed,
                               request.headers.get("x-acs-content-sha256", "")])
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        if hmac.new(SECRET.encode(), to_sign.encode(), hashlib.sha256).hexdigest() != signature:
            return self.error(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        return None

    def handler(self, request: Request) -> Response:
        if request.path != "/" or request.method not in ("GET", "POST"):
            self.problem(f"{request.method} {request.path}")
            return self.error(404, "InvalidAction.NotFound", "Specified api is not found.")
        refused = self.authenticate(request)
        if refused is not None:
            return refused
        injected = self.injected()
        if injected is not None:
            return injected
        action = request.headers.get("x-acs-action", "")
        params = dict(parse_qsl(request.query_string.decode(), keep_blank_values=True))
        self.requests.append((request.method, action))
        if action not in PARAMS:
            return self.error(404, "InvalidAction.NotFound", "Specified api is not found.")
        required, optional = PARAMS[action]
        if required - set(params) or set(params) - required - optional:
            self.problem(f"{action} parameters {sorted(params)}")
            return self.error(400, "MissingParameter", "A required parameter is missing or unknown.")
        return getattr(self, action)(params)

    def DescribeSubDomainRecords(self, p: dict[str, str]) -> Response:
        zone = p.get("DomainName") or next((z for z in self.zones if p["SubDomain"].endswith(z)), "")
        if zone not in self.zones:
            return self.error(400, "InvalidDomainName.NoExist", "The specified domain name does not exist.")
        rr = p["SubDomain"][: -len(zone)].rstrip(".") or "@"
        rows = [{"RR": r["name"], "Type": r["type"], "Value": r["value"], "RecordId": rid, "TTL": r["ttl"],
                 "DomainName": zone, "Line": "default", "Status": "ENABLE", "Locked": False, "Weight": 1}
                for rid, r in self.records.items()
                if r["name"] == rr and r["type"] == p.get("Type", r["type"])]
        return answer({"RequestId": "R1", "TotalCount": len(rows), "PageNumber": 1, "PageSize": 20,
                       "DomainRecords": {"Record": rows}})

    def AddDomainRecord(self, p: dict[str, str]) -> Response:
        if p["DomainName"] not in self.zones:
            return self.error(400, "InvalidDomainName.NoExist", "The specified domain name does not exist.")
        if not valid_address(p["Type"], p["Value"]):
            return self.error(400, "InvalidRR.Format", "The value of the record is invalid.")
        if p["Value"] in self.values(p["RR"], p["Type"]):
            return self.error(400, "DomainRecordDuplicate", "The DNS record already exists.")
        return answer({"RequestId": "R2", "RecordId": self.add(p["RR"], p["Type"], p["Value"], int(p.get("TTL", 600)))})

    def UpdateDomainRecord(self, p: dict[str, str]) -> Response:
        record = self.records.get(p["RecordId"])
        if record is None:
            return self.error(400, "DomainRecordNotBelongToUser", "The DNS record does not belong to you.")
        if record["value"] == p["Value"] and record["name"] == p["RR"]:
            return self.error(400, "DomainRecordDuplicate", "The DNS record already exists.")
        record.update(name=p["RR"], type=p["Type"], value=p["Value"], ttl=int(p.get("TTL", record["ttl"])))
        return answer({"RequestId": "R3", "RecordId": p["RecordId"]})


def _provider(tmp_path: Path, httpserver: Any, fake: AliFake, extra: str = "", secret: str = SECRET,
              key_id: str = KEY_ID, hostnames: tuple[str, ...] = ("home.example.com",)) -> AlidnsProvider:
    return provider_for(AlidnsProvider, tmp_path, httpserver, fake, "/", {"access_key_secret": secret},
                        f'access_key_id = "{key_id}"\n{extra}', hostnames)


def test_signing_matches_the_documented_example() -> None:
    """The V3 signature document's RunInstances example (AccessKey YourAccessKeyId / YourAccessKeySecret)."""
    headers = {"host": "ecs.cn-shanghai.aliyuncs.com", "x-acs-action": "RunInstances",
               "x-acs-content-sha256": sha256_hex(b""), "x-acs-date": "2023-10-26T09:01:01Z",
               "x-acs-signature-nonce": "d410180a5abf7fe235dd9b74aca91fc0", "x-acs-version": "2014-05-26"}
    query = canonical_query({"RegionId": "cn-shanghai",
                             "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"})
    assert query == "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
    assert acs3_authorization("YourAccessKeyId", "YourAccessKeySecret", "POST", "/", query, headers,
                              headers["x-acs-content-sha256"]).endswith(
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804")
    assert canonical_query({"a b": "x*y~z/é"}) == "a%20b=x%2Ay~z%2F%C3%A9"


def test_creates_missing_records_per_family(tmp_path: Path, httpserver: Any) -> None:
    fake = AliFake()
    result = _provider(tmp_path, httpserver, fake).update({4: IP, 6: IP6})
    assert (result.outcome, result.kind) == ("created", "success"), result.message
    assert fake.values("home", "A") == [IP] and fake.values("home", "AAAA") == [IP6]
    assert fake.requests == [("GET", "DescribeSubDomainRecords"), ("POST", "AddDomainRecord")] * 2
    assert fake.problems == []


def test_updates_only_the_differing_family(tmp_path: Path, httpserver: Any) -> None:
    fake = AliFake()
    fake.add("home", "A", IP2, ttl=120)
    fake.add("home", "AAAA", IP6)
    result = _provider(tmp_path, httpserver, fake).update({4: IP, 6: IP6})
    assert result.outcome == "good" and fake.values("home", "A") == [IP] and fake.values("home", "AAAA") == [IP6]
    assert [r for r in fake.records.values() if r["type"] == "A"][0]["ttl"] == 120  # the user's TTL stays
    assert [a for _, a in fake.requests].count("UpdateDomainRecord") == 1
    assert fake.problems == []


def test_two_stale_records_one_is_rewritten(tmp_path: Path, httpserver: Any) -> None:
    """AliDNS refuses two identical records (DomainRecordDuplicate), so only one stale record is rewritten."""
    fake = AliFake()
    fake.add("home", "A", IP2)
    fake.add("home", "A", "11.0.0.9")
    result = _provider(tmp_path, httpserver, fake).update({4: IP})
    assert (result.outcome, result.kind) == ("good", "success"), result.message
    assert fake.values("home", "A") == [IP, "11.0.0.9"] and "11.0.0.9, left alone" in result.message
    assert fake.problems == []


def test_no_write_when_the_record_holds_the_address(tmp_path: Path, httpserver: Any) -> None:
    fake = AliFake()
    fake.add("@", "A", IP)
    provider = _provider(tmp_path, httpserver, fake, hostnames=("example.com",))
    assert provider.update({4: IP}).outcome == "nochg"
    assert fake.requests == [("GET", "DescribeSubDomainRecords")]
    assert provider.verify({4: IP}) is None and provider.verify({4: IP2}) is not None


def test_zone_option_for_a_multi_label_suffix(tmp_path: Path, httpserver: Any) -> None:
    fake = AliFake(zones=("example.com.cn",))
    result = _provider(tmp_path, httpserver, fake, 'zone = "example.com.cn"\nttl = "10m"\n',
                       hostnames=("a.b.example.com.cn",)).update({4: IP})
    assert result.outcome == "created"
    assert list(fake.records.values()) == [{"name": "a.b", "type": "A", "value": IP, "ttl": 600}]


@pytest.mark.parametrize("secret, key_id, outcome", [("wrong-secret-000", KEY_ID, "auth"),
                                                      (SECRET, "LTAIunknown", "auth")])
def test_refused_keys_are_fatal_and_never_shown(tmp_path: Path, httpserver: Any, secret: str, key_id: str,
                                                outcome: str) -> None:
    result = _provider(tmp_path, httpserver, AliFake(), secret=secret, key_id=key_id).update({4: IP})
    assert (result.outcome, result.kind) == (outcome, "fatal")
    assert_secret_free({"s": secret}, result.message, result)


def test_unknown_domain_is_fatal(tmp_path: Path, httpserver: Any) -> None:
    result = _provider(tmp_path, httpserver, AliFake(), hostnames=("home.other.org",)).update({4: IP})
    assert (result.outcome, result.kind) == ("nozone", "fatal")


@pytest.mark.parametrize("status, code, outcome, kind", [
    (400, "Throttling.User", "rate-limited", "transient"),
    (503, "ServiceUnavailable", "http-503", "transient"),
    (500, "InternalError", "http-500", "transient"),
    (400, "InvalidTimeStamp.Expired", "clock", "transient"),
    (400, "SignatureNonceUsed", "nonce", "transient"),
    (403, "Forbidden.RAM", "auth", "fatal"),
    (400, "IncorrectDomainUser", "nozone", "fatal"),
    (400, "InvalidRR.Format", "rejected", "fatal"),
])
def test_error_answers(tmp_path: Path, httpserver: Any, status: int, code: str, outcome: str, kind: str) -> None:
    fake = AliFake(fail=(status, {"RequestId": "X", "Code": code, "Message": "m"}, {}))
    result = _provider(tmp_path, httpserver, fake).update({4: IP})
    assert (result.outcome, result.kind) == (outcome, kind), result.message
    assert classify_error(status, {"Code": code, "Message": "m"}, "", {}).outcome == outcome


def _signed_headers(httpserver: Any, query: str, nonce: str) -> dict[str, str]:
    """Headers of a correctly signed DescribeSubDomainRecords GET with this query (natlink's signer)."""
    signed = {"host": f"localhost:{httpserver.port}", "x-acs-action": "DescribeSubDomainRecords",
              "x-acs-content-sha256": sha256_hex(b""), "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "x-acs-signature-nonce": nonce, "x-acs-version": "2015-01-09"}
    auth = acs3_authorization(KEY_ID, SECRET, "GET", "/", query, signed, signed["x-acs-content-sha256"])
    return {**{k: v for k, v in signed.items() if k != "host"}, "Authorization": auth}


def test_fake_rejects_a_tampered_query(httpserver: Any) -> None:
    """The fake's own signature check is real: a parameter changed after signing is refused."""
    httpserver.expect_request(PATH_ANY).respond_with_handler(AliFake().handler)
    headers = _signed_headers(httpserver, "SubDomain=a.example.com", "n1")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(urllib.request.Request(httpserver.url_for("/") + "?SubDomain=b.example.com",
                                                      headers=headers), timeout=5)
    assert caught.value.code == 400 and b"SignatureDoesNotMatch" in caught.value.read()


def test_fake_refuses_a_replayed_request(httpserver: Any) -> None:
    """A correctly signed request sent twice: the first is answered, the second refused for its used nonce."""
    httpserver.expect_request(PATH_ANY).respond_with_handler(AliFake().handler)
    query = "SubDomain=home.example.com"
    request = urllib.request.Request(httpserver.url_for("/") + "?" + query,
                                     headers=_signed_headers(httpserver, query, "once"))
    with urllib.request.urlopen(request, timeout=5) as first:
        assert first.status == 200
    with pytest.raises(urllib.error.HTTPError) as again:
        urllib.request.urlopen(request, timeout=5)
    assert again.value.code == 400 and b"SignatureNonceUsed" in again.value.read()
