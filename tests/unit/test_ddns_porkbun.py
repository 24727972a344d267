"""Porkbun against a strict local fake of its JSON API v3: every call a POST with apikey + secretapikey in
a JSON body (and nothing secret in the URL), by-name-and-type URLs without a subdomain at the apex, TTLs
as strings, and the documented {"status": "SUCCESS" | "ERROR", "message"} answers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from api_fakes import IP, IP2, IP6, FakeBase, answer, assert_secret_free, provider_for, valid_address
from natlink.ddns.porkbun import PorkbunProvider, classify_error

API_KEY, SECRET_KEY = "pk1_test0a1b2c3d4e5f", "sk1_test9f8e7d6c5b4a"
BY_NAME = re.compile(r"^/api/json/v3/dns/(retrieveByNameType|editByNameType)/([^/]+)/(A|AAAA)(?:/([^/]+))?$")
CREATE = re.compile(r"^/api/json/v3/dns/create/([^/]+)$")


def _error(message: str, status: int = 400) -> Response:
    return answer({"status": "ERROR", "message": message}, status)


@dataclass
class PorkbunFake(FakeBase):
    zones: tuple[str, ...] = ("example.com",)
    api_access: set[str] = field(default_factory=lambda: {"example.com"})

    def handler(self, request: Request) -> Response:
        self.check_agent(request)
        if request.method != "POST":
            self.problem(f"{request.method} {request.path}")
            return _error("Invalid method.", 405)
        if API_KEY in request.full_path or SECRET_KEY in request.full_path:
            self.problem("a key in the URL")
        body = self.json_body(request)
        if not isinstance(body, dict) or (body.get("apikey"), body.get("secretapikey")) != (API_KEY, SECRET_KEY):
            return _error("Invalid API key. (002)")
        injected = self.injected()
        if injected is not None:
            return injected
        self.requests.append(("POST", request.path))
        by_name, create = BY_NAME.match(request.path), CREATE.match(request.path)
        zone = (by_name.group(2) if by_name else create.group(1) if create else "")
        if not (by_name or create):
            self.problem(f"path {request.path}")
            return _error("Invalid endpoint.", 404)
        if zone not in self.zones:
            return _error("Invalid domain.")
        if zone not in self.api_access:
            return _error("Domain is not opted in to API access.")
        fields = {k: v for k, v in body.items() if k not in ("apikey", "secretapikey")}
        if create:
            if set(fields) - {"name", "type", "content", "ttl", "prio", "notes"} or not isinstance(fields.get("ttl"), str):
                self.problem(f"create fields {fields!r}")
            if not valid_address(fields.get("type", ""), fields.get("content", "")):
                return _error("Invalid content.")
            rid = self.add(fields.get("name", ""), fields["type"], fields["content"], int(fields.get("ttl", "600")))
            return answer({"status": "SUCCESS", "id": int(rid)})
        action, rtype, sub = by_name.group(1), by_name.group(3), by_name.group(4) or ""
        if sub == "@":
            self.problem("@ as subdomain (Porkbun leaves it out at the apex)")
        if action == "retrieveByNameType":
            if fields:
                self.problem(f"retrieve fields {fields!r}")
            rows = [{"id": rid, "name": f"{sub + '.' if sub else ''}{zone}", "type": rtype, "content": r["value"],
                     "ttl": str(r["ttl"]), "prio": "0", "notes": ""} for rid, r in self.find(sub, rtype)]
            return answer({"status": "SUCCESS", "cloudflare": "enabled", "records": rows})
        if set(fields) - {"content", "ttl", "prio", "notes"} or "content" not in fields:
            self.problem(f"edit fields {fields!r}")
            return _error("Invalid fields.")
        for _, record in self.find(sub, rtype):
            record.update(value=fields["content"], ttl=int(fields.get("ttl", "600")))
        return answer({"status": "SUCCESS"})


def _provider(tmp_path: Path, httpserver: Any, fake: PorkbunFake, extra: str = "", secret: str = SECRET_KEY,
              hostnames: tuple[str, ...] = ("home.example.com",)) -> PorkbunProvider:
    return provider_for(PorkbunProvider, tmp_path, httpserver, fake, "/api/json/v3",
                        {"api_key": API_KEY, "secret_api_key": secret}, extra, hostnames)


def test_creates_each_family(tmp_path: Path, httpserver: Any) -> None:
    fake = PorkbunFake()
    result = _provider(tmp_path, httpserver, fake).update({4: IP, 6: IP6})
    assert (result.outcome, result.kind) == ("created", "success"), result.message
    assert fake.values("home", "A") == [IP] and fake.values("home", "AAAA") == [IP6]
    assert fake.requests == [("POST", "/api/json/v3/dns/retrieveByNameType/example.com/A/home"),
                             ("POST", "/api/json/v3/dns/create/example.com"),
                             ("POST", "/api/json/v3/dns/retrieveByNameType/example.com/AAAA/home"),
                             ("POST", "/api/json/v3/dns/create/example.com")]
    assert fake.problems == []


def test_edits_only_the_family_that_differs_keeping_its_ttl(tmp_path: Path, httpserver: Any) -> None:
    fake = PorkbunFake()
    fake.add("home", "A", IP2, ttl=900)
    fake.add("home", "AAAA", IP6)
    result = _provider(tmp_path, httpserver, fake).update({4: IP, 6: IP6})
    assert result.outcome == "good" and fake.values("home", "A") == [IP] and fake.values("home", "AAAA") == [IP6]
    assert [p.rsplit("/dns/", 1)[1].split("/")[0] for _, p in fake.requests] == \
        ["retrieveByNameType", "editByNameType", "retrieveByNameType"]
    assert [r["ttl"] for _, r in fake.find("home", "A")] == [900]
    assert fake.problems == []


def test_apex_unchanged_costs_no_write(tmp_path: Path, httpserver: Any) -> None:
    fake = PorkbunFake()
    fake.add("", "A", IP)
    provider = _provider(tmp_path, httpserver, fake, hostnames=("example.com",))
    assert provider.update({4: IP}).outcome == "nochg"
    assert fake.requests == [("POST", "/api/json/v3/dns/retrieveByNameType/example.com/A")]
    assert provider.verify({4: IP}) is None and fake.problems == []


def test_wrong_keys_are_fatal_and_never_shown(tmp_path: Path, httpserver: Any) -> None:
    result = _provider(tmp_path, httpserver, PorkbunFake(), secret="sk1_wrong_000000").update({4: IP})
    assert (result.outcome, result.kind) == ("auth", "fatal") and "Invalid API key" in result.message
    assert_secret_free({"s": "sk1_wrong_000000", "k": API_KEY}, result.message, result)


def test_domain_without_api_access_stops_that_name_only(tmp_path: Path, httpserver: Any) -> None:
    fake = PorkbunFake(zones=("example.com", "example.org"))
    result = _provider(tmp_path, httpserver, fake, hostnames=("a.example.org", "b.example.com")).update({4: IP})
    assert [(p.outcome, p.per_name) for p in result.parts] == [("api-access", True), ("created", False)]
    assert "API ACCESS" in result.parts[0].message


@pytest.mark.parametrize("status, payload, outcome, kind", [
    (503, {"status": "ERROR", "message": "Too many requests."}, "rate-limited", "transient"),
    (500, {"status": "ERROR", "message": "Internal error."}, "http-500", "transient"),
    (400, {"status": "ERROR", "message": "Invalid domain."}, "nozone", "fatal"),
    (400, {"status": "ERROR", "message": "Invalid type."}, "rejected", "fatal"),
])
def test_error_answers(tmp_path: Path, httpserver: Any, status: int, payload: Any, outcome: str, kind: str) -> None:
    result = _provider(tmp_path, httpserver, PorkbunFake(fail=(status, payload, {}))).update({4: IP})
    assert (result.outcome, result.kind) == (outcome, kind), result.message
    assert classify_error(status, payload, "", {}).outcome == outcome
