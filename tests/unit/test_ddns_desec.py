"""deSEC against a strict local fake of its REST API v1: `Authorization: Token …`, trailing-slash URLs,
"@" for the apex in RRset URLs, JSON bodies, owns_qname zone discovery, and the documented answers
({"detail": …} errors, 404 for a missing RRset, 429 with Retry-After)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from werkzeug import Request, Response

from api_fakes import IP, IP2, IP6, FakeBase, answer, assert_secret_free, provider_for, valid_address
from natlink.ddns.desec import DesecProvider, classify_error

TOKEN = "desec-tok-4f3e2d1c0b9a8877"
RRSET = re.compile(r"^/api/v1/domains/([^/]+)/rrsets/([^/]*)/([A-Z]+)/$")


@dataclass
class DesecFake(FakeBase):
    zones: tuple[str, ...] = ("example.com",)
    minimum_ttl: int = 3600

    def rrset(self, zone: str, sub: str, rtype: str) -> dict[str, Any]:
        values = self.values(sub, rtype)
        ttl = next(r["ttl"] for _, r in self.find(sub, rtype))
        return {"created": "2026-12-01T10:00:00Z", "domain": zone, "subname": sub,
                "name": f"{sub + '.' if sub else ''}{zone}.", "type": rtype, "records": values, "ttl": ttl,
                "touched": "2026-12-01T10:00:00Z"}

    def handler(self, request: Request) -> Response:
        self.check_agent(request)
        if request.headers.get("Authorization") != f"Token {TOKEN}":
            return answer({"detail": "Invalid token."}, 401)
        injected = self.injected()
        if injected is not None:
            return injected
        path = unquote(request.path)
        self.requests.append((request.method, path))
        if path == "/api/v1/domains/" and request.method == "GET":
            qname = request.args.get("owns_qname", "")
            # deSEC answers the one domain responsible for the name: the longest that contains it.
            owners = sorted((z for z in self.zones if qname == z or qname.endswith("." + z)), key=len)[-1:]
            return answer([{"name": z, "minimum_ttl": self.minimum_ttl, "created": "2026-01-01T00:00:00Z",
                            "published": "2026-01-01T00:00:00Z", "touched": "2026-01-01T00:00:00Z"}
                           for z in owners])
        create = re.match(r"^/api/v1/domains/([^/]+)/rrsets/$", path)
        one = RRSET.match(path)
        zone = (create or one).group(1) if (create or one) else ""
        if zone not in self.zones:
            if not (create or one):
                self.problem(f"{request.method} {path}")
            return answer({"detail": "Not found."}, 404)
        if create and request.method == "POST":
            body = self.json_body(request)
            if not isinstance(body, dict) or set(body) != {"subname", "type", "ttl", "records"}:
                self.problem(f"POST body {body!r}")
                return answer({"non_field_errors": ["Invalid data."]}, 400)
            if body["ttl"] < self.minimum_ttl:
                return answer({"ttl": [f"Ensure this value is greater than or equal to {self.minimum_ttl}."]}, 400)
            if self.find(body["subname"], body["type"]):
                return answer({"non_field_errors": ["Another RRset with the same subdomain and type exists for "
                                                    "this domain."]}, 400)
            if not all(valid_address(body["type"], v) for v in body["records"]):
                return answer({"records": ["Record content malformed."]}, 400)
            for value in body["records"]:
                self.add(body["subname"], body["type"], value, body["ttl"])
            return answer(self.rrset(zone, body["subname"], body["type"]), 201)
        if one:
            sub = "" if one.group(2) == "@" else one.group(2)
            if one.group(2) == "":
                self.problem("empty subname in an RRset URL (deSEC wants @ for the apex)")
            rtype = one.group(3)
            if request.method == "GET":
                return answer(self.rrset(zone, sub, rtype)) if self.find(sub, rtype) else \
                    answer({"detail": "Not found."}, 404)
            if request.method == "PATCH":
                body = self.json_body(request)
                if not self.find(sub, rtype):
                    return answer({"detail": "Not found."}, 404)
                if not isinstance(body, dict) or set(body) - {"records", "ttl"}:
                    self.problem(f"PATCH body {body!r}")
                    return answer({"non_field_errors": ["Invalid data."]}, 400)
                ttl = next(r["ttl"] for _, r in self.find(sub, rtype))
                for rid, _ in self.find(sub, rtype):
                    del self.records[rid]
                for value in body["records"]:
                    self.add(sub, rtype, value, body.get("ttl", ttl))
                return answer(self.rrset(zone, sub, rtype))
        self.problem(f"{request.method} {path}")
        return answer({"detail": f'Method "{request.method}" not allowed.'}, 405)


def _provider(tmp_path: Path, httpserver: Any, fake: DesecFake, extra: str = "", token: str = TOKEN,
              hostnames: tuple[str, ...] = ("home.example.com",)) -> DesecProvider:
    return provider_for(DesecProvider, tmp_path, httpserver, fake, "/api/v1", {"token": token}, extra, hostnames)


def test_finds_the_zone_and_creates_each_family(tmp_path: Path, httpserver: Any) -> None:
    fake = DesecFake(zones=("example.com", "home.example.com"))
    result = _provider(tmp_path, httpserver, fake, hostnames=("pc.home.example.com",)).update({4: IP, 6: IP6})
    assert (result.outcome, result.kind) == ("created", "success"), result.message
    assert fake.requests[0] == ("GET", "/api/v1/domains/")  # owns_qname names the longest matching domain
    assert fake.values("pc", "A") == [IP] and fake.values("pc", "AAAA") == [IP6]
    assert fake.problems == []


def test_patches_only_the_family_that_differs_and_keeps_ttl(tmp_path: Path, httpserver: Any) -> None:
    fake = DesecFake()
    fake.add("home", "A", IP2, ttl=7200)
    fake.add("home", "AAAA", IP6, ttl=3600)
    result = _provider(tmp_path, httpserver, fake, 'zone = "example.com"\n').update({4: IP, 6: IP6})
    assert result.outcome == "good" and fake.values("home", "A") == [IP] and fake.values("home", "AAAA") == [IP6]
    assert [m for m, _ in fake.requests] == ["GET", "PATCH", "GET"]
    assert [r["ttl"] for _, r in fake.find("home", "A")] == [7200]
    assert fake.problems == []


def test_apex_unchanged_costs_no_write(tmp_path: Path, httpserver: Any) -> None:
    fake = DesecFake()
    fake.add("", "A", IP)
    provider = _provider(tmp_path, httpserver, fake, 'zone = "example.com"\n', hostnames=("example.com",))
    assert provider.update({4: IP}).outcome == "nochg"
    assert fake.requests == [("GET", "/api/v1/domains/example.com/rrsets/@/A/")]
    assert provider.verify({4: IP}) is None
    assert fake.problems == []


def test_wrong_token_is_fatal_and_never_shown(tmp_path: Path, httpserver: Any) -> None:
    result = _provider(tmp_path, httpserver, DesecFake(), token="desec-wrong-0000").update({4: IP})
    assert (result.outcome, result.kind) == ("auth", "fatal") and "Invalid token." in result.message
    assert_secret_free({"t": "desec-wrong-0000", "r": TOKEN}, result.message, result)


def test_name_outside_the_account_stops_that_name_only(tmp_path: Path, httpserver: Any) -> None:
    fake = DesecFake()
    result = _provider(tmp_path, httpserver, fake, hostnames=("x.other.org", "home.example.com")).update({4: IP})
    assert [(p.outcome, p.kind, p.per_name) for p in result.parts] == [("nozone", "fatal", True),
                                                                       ("created", "success", False)]


def test_ttl_below_the_domain_minimum_is_rejected(tmp_path: Path, httpserver: Any) -> None:
    result = _provider(tmp_path, httpserver, DesecFake(), 'ttl = "5m"\n').update({4: IP})
    assert (result.outcome, result.kind) == ("rejected", "fatal") and "3600" in result.message


@pytest.mark.parametrize("status, payload, headers, outcome, kind", [
    (429, {"detail": "Request was throttled. Expected available in 30 seconds."}, {"Retry-After": "30"},
     "rate-limited", "transient"),
    (503, {"detail": "Service unavailable"}, {}, "http-503", "transient"),
    (403, {"detail": "You do not have permission to perform this action."}, {}, "auth", "fatal"),
])
def test_error_answers(tmp_path: Path, httpserver: Any, status: int, payload: Any, headers: dict[str, str],
                       outcome: str, kind: str) -> None:
    result = _provider(tmp_path, httpserver, DesecFake(fail=(status, payload, headers))).update({4: IP})
    assert (result.outcome, result.kind) == (outcome, kind), result.message
    assert result.retry_after == (30 if headers else None)
    assert classify_error(status, payload, "", {k.lower(): v for k, v in headers.items()}).outcome == outcome


def test_ttl_option_applies_to_a_changed_rrset(tmp_path: Path, httpserver: Any) -> None:
    fake = DesecFake()
    fake.add("home", "A", IP2, ttl=3600)
    assert _provider(tmp_path, httpserver, fake, 'zone = "example.com"\nttl = "2h"\n').update({4: IP}).ok
    assert [(r["value"], r["ttl"]) for _, r in fake.find("home", "A")] == [(IP, 7200)] and fake.problems == []
