"""DigitalOcean DNS (API v2) against a strict local fake: Bearer token, GET …/records?type=&name=<fqdn>,
POST/PATCH with JSON bodies, and the documented answers ({"domain_records": […], "links", "meta"},
201 + {"domain_record"}, errors {"id": "unauthorized" | "not_found" | "too_many_requests", "message"})."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from api_fakes import IP, IP2, IP6, FakeBase, answer, assert_secret_free, provider_for, valid_address
from natlink.ddns.digitalocean import DigitaloceanProvider, classify_error

TOKEN = "dop_v1_test0123456789abcdef"
RECORDS = re.compile(r"^/v2/domains/([^/]+)/records(?:/(\d+))?$")


def _error(status: int, code: str, message: str) -> Response:
    return answer({"id": code, "message": message, "request_id": "req-1"}, status)


@dataclass
class DigitaloceanFake(FakeBase):
    zones: tuple[str, ...] = ("example.com",)

    def row(self, rid: str, r: dict[str, Any]) -> dict[str, Any]:
        return {"id": int(rid), "type": r["type"], "name": r["name"], "data": r["value"], "priority": None,
                "port": None, "ttl": r["ttl"], "weight": None, "flags": None, "tag": None}

    def handler(self, request: Request) -> Response:
        self.check_agent(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(401, "unauthorized", "Unable to authenticate you.")
        injected = self.injected()
        if injected is not None:
            return injected
        self.requests.append((request.method, request.full_path.rstrip("?")))
        m = RECORDS.match(request.path)
        if not m:
            self.problem(f"{request.method} {request.path}")
            return _error(404, "not_found", "The resource you were accessing could not be found.")
        zone, rid = m.groups()
        if zone not in self.zones:
            return _error(404, "not_found", "The resource you were accessing could not be found.")
        if request.method == "GET" and rid is None:
            name = request.args.get("name", "")
            if name and not (name == zone or name.endswith("." + zone)):
                self.problem(f"name filter {name!r} is not a full name in {zone}")
            rel = name[: -len(zone)].rstrip(".") or "@" if name else None
            rows = [self.row(i, r) for i, r in self.records.items()
                    if (rel is None or r["name"] == rel) and r["type"] == request.args.get("type", r["type"])]
            return answer({"domain_records": rows, "links": {}, "meta": {"total": len(rows)}})
        body = self.json_body(request)
        if request.method == "POST" and rid is None:
            if not isinstance(body, dict) or not {"type", "name", "data"} <= set(body) or \
                    set(body) - {"type", "name", "data", "ttl", "priority", "port", "weight", "flags", "tag"}:
                self.problem(f"POST body {body!r}")
                return _error(422, "unprocessable_entity", "Invalid record.")
            if not valid_address(body["type"], body["data"]) or body["name"].endswith(zone):
                return _error(422, "unprocessable_entity", "Name is invalid or data is not an address.")
            new = self.add(body["name"], body["type"], body["data"], body.get("ttl", 1800))
            return answer({"domain_record": self.row(new, self.records[new])}, 201)
        if request.method == "PATCH" and rid is not None:
            if rid not in self.records:
                return _error(404, "not_found", "The resource you were accessing could not be found.")
            if not isinstance(body, dict) or set(body) - {"type", "name", "data", "ttl"} or "type" not in body:
                self.problem(f"PATCH body {body!r}")
                return _error(422, "unprocessable_entity", "Invalid record.")
            self.records[rid].update(value=body.get("data", self.records[rid]["value"]),
                                     ttl=body.get("ttl", self.records[rid]["ttl"]))
            return answer({"domain_record": self.row(rid, self.records[rid])})
        self.problem(f"{request.method} {request.path}")
        return _error(405, "method_not_allowed", "Method not allowed.")


def _provider(tmp_path: Path, httpserver: Any, fake: DigitaloceanFake, extra: str = "", token: str = TOKEN,
              hostnames: tuple[str, ...] = ("home.example.com",)) -> DigitaloceanProvider:
    return provider_for(DigitaloceanProvider, tmp_path, httpserver, fake, "/v2", {"token": token}, extra, hostnames)


def test_creates_each_family(tmp_path: Path, httpserver: Any) -> None:
    fake = DigitaloceanFake()
    result = _provider(tmp_path, httpserver, fake).update({4: IP, 6: IP6})
    assert (result.outcome, result.kind) == ("created", "success"), result.message
    assert fake.values("home", "A") == [IP] and fake.values("home", "AAAA") == [IP6]
    assert fake.requests[:2] == [("GET", "/v2/domains/example.com/records?type=A&name=home.example.com&per_page=200"),
                                 ("POST", "/v2/domains/example.com/records")]
    assert fake.problems == []


def test_rewrites_one_record_and_names_the_others(tmp_path: Path, httpserver: Any) -> None:
    """Two A records, neither ours: one is rewritten, the other is left alone (natlink deletes nothing it did
    not create) and named in the message; the AAAA record is not touched."""
    fake = DigitaloceanFake()
    fake.add("home", "A", IP2, ttl=60)
    fake.add("home", "A", "11.0.0.9", ttl=60)
    fake.add("home", "AAAA", IP6)
    result = _provider(tmp_path, httpserver, fake).update({4: IP, 6: IP6})
    assert result.outcome == "good" and fake.values("home", "A") == ["11.0.0.2", "11.0.0.9"]
    assert "also holds 11.0.0.9, left alone" in result.message and fake.values("home", "AAAA") == [IP6]
    assert [m for m, _ in fake.requests] == ["GET", "PATCH", "GET"]
    assert fake.problems == []


def test_a_record_already_holding_the_address_means_no_write(tmp_path: Path, httpserver: Any) -> None:
    fake = DigitaloceanFake()
    fake.add("home", "A", IP2)
    fake.add("home", "A", IP)
    result = _provider(tmp_path, httpserver, fake).update({4: IP})
    assert result.outcome == "nochg" and f"also holds {IP2}" in result.message
    assert [m for m, _ in fake.requests] == ["GET"]


def test_apex_unchanged_costs_no_write(tmp_path: Path, httpserver: Any) -> None:
    fake = DigitaloceanFake()
    fake.add("@", "A", IP)
    provider = _provider(tmp_path, httpserver, fake, hostnames=("example.com",))
    assert provider.update({4: IP}).outcome == "nochg" and [m for m, _ in fake.requests] == ["GET"]
    assert provider.verify({4: IP}) is None and fake.problems == []


def test_wrong_token_is_fatal_and_never_shown(tmp_path: Path, httpserver: Any) -> None:
    result = _provider(tmp_path, httpserver, DigitaloceanFake(), token="dop_v1_wrong").update({4: IP})
    assert (result.outcome, result.kind) == ("auth", "fatal") and "unauthorized" in result.message
    assert_secret_free({"t": "dop_v1_wrong"}, result.message, result)


def test_domain_not_in_account_stops_that_name_only(tmp_path: Path, httpserver: Any) -> None:
    fake = DigitaloceanFake()
    result = _provider(tmp_path, httpserver, fake, hostnames=("a.other.org", "b.example.com")).update({4: IP})
    assert [(p.outcome, p.per_name) for p in result.parts] == [("nozone", True), ("created", False)]


@pytest.mark.parametrize("status, code, headers, outcome, kind", [
    (429, "too_many_requests", {"Retry-After": "12"}, "rate-limited", "transient"),
    (500, "server_error", {}, "http-500", "transient"),
    (403, "forbidden", {}, "auth", "fatal"),
    (422, "unprocessable_entity", {}, "rejected", "fatal"),
])
def test_error_answers(tmp_path: Path, httpserver: Any, status: int, code: str, headers: dict[str, str],
                       outcome: str, kind: str) -> None:
    payload = {"id": code, "message": "m"}
    result = _provider(tmp_path, httpserver, DigitaloceanFake(fail=(status, payload, headers))).update({4: IP})
    assert (result.outcome, result.kind) == (outcome, kind), result.message
    assert result.retry_after == (12 if headers else None)
    assert classify_error(status, payload, "", {}).outcome == outcome


def test_ttl_option_applies_to_a_changed_record(tmp_path: Path, httpserver: Any) -> None:
    fake = DigitaloceanFake()
    fake.add("home", "A", IP2, ttl=1800)
    assert _provider(tmp_path, httpserver, fake, 'ttl = "1m"\n').update({4: IP}).ok
    assert [(r["value"], r["ttl"]) for _, r in fake.find("home", "A")] == [(IP, 60)] and fake.problems == []
