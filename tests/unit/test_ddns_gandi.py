"""Gandi LiveDNS v5 against a strict local fake: `Authorization: Bearer <PAT>` (or the deprecated
`Apikey`), GET/PUT /domains/{fqdn}/records/{name}/{type} with "@" at the apex, JSON bodies with rrset_values
and rrset_ttl, and the documented answers (201 "DNS Record Created", {"code", "message", "object", "cause"})."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from api_fakes import IP, IP2, IP6, FakeBase, answer, assert_secret_free, provider_for, valid_address
from natlink.ddns.gandi import GandiProvider, classify_error
from natlink.errors import ConfigError

PAT = "gandi-pat-0123456789abcdef"
RRSET = re.compile(r"^/v5/livedns/domains/([^/]+)/records/([^/]+)/([A-Z]+)$")


def _error(code: int, message: str, cause: str) -> Response:
    return answer({"code": code, "message": message, "object": "HTTP" + cause.replace(" ", ""), "cause": cause}, code)


@dataclass
class GandiFake(FakeBase):
    zones: tuple[str, ...] = ("example.com",)
    scheme: str = "Bearer"

    def handler(self, request: Request) -> Response:
        self.check_agent(request)
        if request.headers.get("Authorization") != f"{self.scheme} {PAT}":
            return _error(401, "The server could not verify that you authorized to access the document you "
                               "requested.", "Unauthorized")
        injected = self.injected()
        if injected is not None:
            return injected
        self.requests.append((request.method, request.path))
        m = RRSET.match(request.path)
        if not m:
            self.problem(f"{request.method} {request.path}")
            return _error(404, "The resource could not be found.", "Not Found")
        zone, name, rtype = m.groups()
        if zone not in self.zones:
            return _error(404, "The resource could not be found.", "Not Found")
        if request.method == "GET":
            if not self.find(name, rtype):
                return _error(404, f"Can't find the DNS record {name}/{rtype} in LiveDNS", "Not Found")
            ttl = self.find(name, rtype)[0][1]["ttl"]
            return answer({"rrset_name": name, "rrset_type": rtype, "rrset_ttl": ttl,
                           "rrset_values": self.values(name, rtype),
                           "rrset_href": f"https://api.gandi.net/v5/livedns/domains/{zone}/records/{name}/{rtype}"})
        if request.method == "PUT":
            body = self.json_body(request)
            if not isinstance(body, dict) or set(body) - {"rrset_values", "rrset_ttl"} or "rrset_values" not in body:
                self.problem(f"PUT body {body!r}")
                return _error(400, "Invalid body.", "Bad Request")
            if not all(valid_address(rtype, v) for v in body["rrset_values"]) or body.get("rrset_ttl", 300) < 300:
                return answer({"code": 400, "message": "Validation error", "object": "HTTPBadRequest",
                               "cause": "Bad Request", "errors": [{"location": "body", "name": "rrset_ttl",
                                                                   "description": "must be >= 300"}]}, 400)
            for rid, _ in self.find(name, rtype):
                del self.records[rid]
            for value in body["rrset_values"]:
                self.add(name, rtype, value, body.get("rrset_ttl", 10800))
            return answer({"message": "DNS Record Created"}, 201)
        self.problem(f"method {request.method}")
        return _error(405, "The method is not allowed for the requested URL.", "Method Not Allowed")


def _provider(tmp_path: Path, httpserver: Any, fake: GandiFake, extra: str = "", token: str = PAT,
              hostnames: tuple[str, ...] = ("home.example.com",)) -> GandiProvider:
    return provider_for(GandiProvider, tmp_path, httpserver, fake, "/v5/livedns", {"token": token}, extra, hostnames)


def test_creates_each_family(tmp_path: Path, httpserver: Any) -> None:
    fake = GandiFake()
    result = _provider(tmp_path, httpserver, fake).update({4: IP, 6: IP6})
    assert (result.outcome, result.kind) == ("created", "success"), result.message
    assert fake.values("home", "A") == [IP] and fake.values("home", "AAAA") == [IP6]
    assert fake.requests == [("GET", "/v5/livedns/domains/example.com/records/home/A"),
                             ("PUT", "/v5/livedns/domains/example.com/records/home/A"),
                             ("GET", "/v5/livedns/domains/example.com/records/home/AAAA"),
                             ("PUT", "/v5/livedns/domains/example.com/records/home/AAAA")]
    assert [r["ttl"] for r in fake.records.values()] == [300, 300] and fake.problems == []


def test_replaces_only_the_differing_family_keeping_its_ttl(tmp_path: Path, httpserver: Any) -> None:
    fake = GandiFake()
    fake.add("home", "A", IP2, ttl=10800)
    fake.add("home", "AAAA", IP6)
    result = _provider(tmp_path, httpserver, fake).update({4: IP, 6: IP6})
    assert result.outcome == "good" and fake.values("home", "A") == [IP] and fake.values("home", "AAAA") == [IP6]
    assert [m for m, _ in fake.requests] == ["GET", "PUT", "GET"]
    assert [r["ttl"] for _, r in fake.find("home", "A")] == [10800] and fake.problems == []


def test_apex_unchanged_with_the_legacy_apikey_scheme(tmp_path: Path, httpserver: Any) -> None:
    fake = GandiFake(scheme="Apikey")
    fake.add("@", "A", IP)
    provider = _provider(tmp_path, httpserver, fake, 'auth_scheme = "apikey"\n', hostnames=("example.com",))
    assert provider.update({4: IP}).outcome == "nochg"
    assert fake.requests == [("GET", "/v5/livedns/domains/example.com/records/@/A")]
    assert provider.verify({4: IP}) is None and fake.problems == []


def test_wrong_token_is_fatal_and_never_shown(tmp_path: Path, httpserver: Any) -> None:
    result = _provider(tmp_path, httpserver, GandiFake(), token="gandi-wrong-999").update({4: IP})
    assert (result.outcome, result.kind) == ("auth", "fatal")
    assert_secret_free({"t": "gandi-wrong-999"}, result.message, result)


def test_domain_not_on_livedns_stops_that_name_only(tmp_path: Path, httpserver: Any) -> None:
    fake = GandiFake()
    result = _provider(tmp_path, httpserver, fake, hostnames=("a.other.org", "b.example.com")).update({4: IP})
    assert [(p.outcome, p.per_name) for p in result.parts] == [("nozone", True), ("created", False)]


@pytest.mark.parametrize("status, headers, outcome, kind", [
    (429, {"Retry-After": "60"}, "rate-limited", "transient"),
    (502, {}, "http-502", "transient"),
    (403, {}, "auth", "fatal"),
])
def test_error_answers(tmp_path: Path, httpserver: Any, status: int, headers: dict[str, str], outcome: str,
                       kind: str) -> None:
    payload = {"code": status, "message": "m", "object": "HTTPError", "cause": "c"}
    result = _provider(tmp_path, httpserver, GandiFake(fail=(status, payload, headers))).update({4: IP})
    assert (result.outcome, result.kind) == (outcome, kind), result.message
    assert result.retry_after == (60 if headers else None)
    assert classify_error(status, payload, "", {}).outcome == outcome


def test_low_ttl_is_rejected(tmp_path: Path, httpserver: Any) -> None:
    result = _provider(tmp_path, httpserver, GandiFake(), 'ttl = "1m"\n').update({4: IP})
    assert (result.outcome, result.kind) == ("rejected", "fatal")


def test_unknown_auth_scheme_is_a_config_error(tmp_path: Path, httpserver: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        _provider(tmp_path, httpserver, GandiFake(), 'auth_scheme = "basic"\n')
    assert "auth_scheme" in str(caught.value)
