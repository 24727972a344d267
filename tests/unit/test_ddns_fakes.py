"""Local stand-ins for the DDNS providers' HTTP APIs, as strict as their documentation, plus tests that
prove the fakes really reject what the real services reject (a lenient fake would make every provider
test meaningless). Other test modules import the fakes from here.

- dyndns2 (No-IP, Oray, Dynu, dyn.com spec): GET <path>?hostname=…&myip=…, HTTP basic auth, a User-Agent
  naming the client and its version; unknown parameters are an error.
- DuckDNS: GET /update?domains=…&token=…[&ip=…][&ipv6=…][&verbose=true]; answers OK / KO.
- Cloudflare API v4: Authorization: Bearer <token>, JSON bodies, {"success", "errors", "result"} envelopes.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from natlink.config import Config, parse_config

PASSWORD = "pw-Zq8#s3cr3t-XYZ"
TOKEN = "duck-0d2c6a7e-5e7b-4bb1-9b1c-3f5b9c1a8d42"
CF_TOKEN = "cf-tok-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9"
USER = "me@example.com"
UA_RE = re.compile(r"^natlink/\d+\.\d+\.\d+ \(.+\)$")


def write_secret(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def load(tmp_path: Path, toml: str) -> Config:
    """A real config parsed by natlink's loader (so secrets go through *_file like a user's)."""
    path = tmp_path / "natlink.toml"
    path.write_text(toml + f'\n[service]\nstate_dir = "{tmp_path / "state"}"\n')
    return parse_config(path.read_text(), path)


# --------------------------------------------------------------------------- dyndns2


@dataclass
class Dyndns2Fake:
    """Answers `answer` (with {ip} filled in) to every valid request; anything off-spec gets HTTP 400."""

    path: str = "/nic/update"
    ipv6_param: str | None = "myipv6"  # "myip": comma-joined in myip; None: the provider takes no IPv6
    extra: dict[str, str] = field(default_factory=dict)  # parameters the provider requires (OVH: system=dyndns)
    answer: str = "good {ip}"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    delay: float = 0.0

    def check(self, request: Request) -> list[str]:
        problems = []
        if request.method != "GET":
            problems.append(f"method {request.method}")
        if request.path != self.path:
            problems.append(f"path {request.path}")
        auth = request.authorization
        if auth is None or auth.type != "basic":
            problems.append("no basic auth")
        elif (auth.username, auth.password) != (USER, PASSWORD):
            problems.append("wrong credentials")
        if not UA_RE.match(request.headers.get("User-Agent", "")):
            problems.append(f"bad User-Agent {request.headers.get('User-Agent')!r}")
        allowed = {"hostname", "myip"} | ({self.ipv6_param} if self.ipv6_param else set()) | set(self.extra)
        extra = set(request.args) - allowed
        for key, value in self.extra.items():
            if request.args.get(key) != value:
                problems.append(f"{key} must be {value!r}")
        if extra:
            problems.append(f"unknown parameters {sorted(extra)}")
        if any(len(request.args.getlist(k)) != 1 for k in request.args):
            problems.append("repeated parameter")
        if not request.args.get("hostname"):
            problems.append("no hostname")
        for key in ("myip", self.ipv6_param):
            for part in (request.args.get(key or "") or "").split(","):
                if part:
                    try:
                        ipaddress.ip_address(part)
                    except ValueError:
                        problems.append(f"{key}={part!r} is not an address")
        return problems

    def handler(self, request: Request) -> Response:
        if self.delay:
            threading.Event().wait(self.delay)
        problems = self.check(request)
        if problems:
            self.problems.extend(problems)
            return Response("bad request: " + "; ".join(problems), status=400)
        self.requests.append(dict(request.args))
        ip = request.args.get("myip", "")
        return Response(self.answer.format(ip=ip), status=self.status, headers=self.headers,
                        content_type="text/plain")


def dyndns2_toml(provider: str, server: str, pw_file: Path, hostnames: tuple[str, ...] = ("host.example.net",),
                 extra: str = "") -> str:
    names = ", ".join(f'"{h}"' for h in hostnames)
    return (f'[[ddns]]\nname = "d"\nprovider = "{provider}"\nhostnames = [{names}]\nserver = "{server}"\n'
            f'username = "{USER}"\npassword_file = "{pw_file}"\n'
            f'{"" if "verify" in extra or "nameserver" in extra else "verify = false"}\n{extra}')


# --------------------------------------------------------------------------- DuckDNS


@dataclass
class DuckFake:
    token: str = TOKEN
    domains: tuple[str, ...] = ("myhome",)
    current: dict[str, str] = field(default_factory=dict)
    status: int = 200
    override: str | None = None  # a fixed body instead of the real logic
    requests: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def handler(self, request: Request) -> Response:
        problems = []
        if request.method != "GET" or request.path != "/update":
            problems.append(f"{request.method} {request.path}")
        extra = set(request.args) - {"domains", "token", "ip", "ipv6", "verbose", "clear"}
        if extra:
            problems.append(f"unknown parameters {sorted(extra)}")
        if not UA_RE.match(request.headers.get("User-Agent", "")):
            problems.append("bad User-Agent")
        if problems:
            self.problems.extend(problems)
            return Response("KO", status=400)
        self.requests.append(dict(request.args))
        if self.override is not None or self.status != 200:
            return Response(self.override or "", status=self.status, content_type="text/plain")
        domains = request.args.get("domains", "").split(",")
        # Documented: KO for a bad token or a domain that is not the account's.
        if request.args.get("token") != self.token or not all(d in self.domains for d in domains):
            return Response("KO", content_type="text/plain")
        new = {"ip": request.args.get("ip", ""), "ipv6": request.args.get("ipv6", "")}
        changed = any(new[k] and self.current.get(k) != new[k] for k in new)
        self.current.update({k: v for k, v in new.items() if v})
        if request.args.get("verbose") == "true":
            body = f"OK\n{new['ip']}\n{new['ipv6']}\n{'UPDATED' if changed else 'NOCHANGE'}"
        else:
            body = "OK"
        return Response(body, content_type="text/plain")


# --------------------------------------------------------------------------- Cloudflare


@dataclass
class CloudflareFake:
    """The slice of API v4 a DDNS client uses, with its envelope, auth and validation errors."""

    token: str = CF_TOKEN
    zones: dict[str, str] = field(default_factory=lambda: {"example.com": "zone-123"})
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail: tuple[int, dict[str, Any], dict[str, str]] | None = None  # (status, body, headers) for every request
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def add_record(self, name: str, rtype: str, content: str, ttl: int = 300, proxied: bool = False) -> str:
        rid = f"rec-{next(self._ids)}"
        self.records[rid] = {"id": rid, "zone_id": "zone-123", "name": name, "type": rtype, "content": content,
                             "ttl": ttl, "proxied": proxied}
        return rid

    @staticmethod
    def envelope(result: Any = None, errors: list[dict[str, Any]] | None = None, status: int = 200) -> Response:
        body = {"success": not errors, "errors": errors or [], "messages": [], "result": result}
        return Response(json.dumps(body), status=status, content_type="application/json")

    def handler(self, request: Request) -> Response:
        body = request.get_data(as_text=True)
        self.requests.append((request.method, request.path, dict(request.args)))
        if not UA_RE.match(request.headers.get("User-Agent", "")):
            self.problems.append("bad User-Agent")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            # Cloudflare: 400/403 with code 9109 "Invalid access token" / 10000 "Authentication error"
            return self.envelope(errors=[{"code": 10000, "message": "Authentication error"}], status=403)
        if self.fail is not None:
            status, payload, headers = self.fail
            return Response(json.dumps(payload), status=status, headers=headers, content_type="application/json")
        m = re.fullmatch(r"/client/v4/zones(?:/([^/]+)/dns_records(?:/([^/]+))?)?", request.path)
        if not m:
            return self.envelope(errors=[{"code": 7003, "message": "No route for that URI"}], status=400)
        zone_id, record_id = m.groups()
        data: Any = None
        if request.method in ("POST", "PATCH", "PUT"):
            if request.headers.get("Content-Type") != "application/json":
                self.problems.append("write without Content-Type: application/json")
                return self.envelope(errors=[{"code": 6003, "message": "Invalid request headers"}], status=400)
            try:
                data = json.loads(body)
            except ValueError:
                return self.envelope(errors=[{"code": 6007, "message": "Malformed JSON in request body"}], status=400)
        if zone_id is None:
            if request.method != "GET":
                return self.envelope(errors=[{"code": 10000, "message": "method"}], status=405)
            name = request.args.get("name")
            return self.envelope([{"id": zid, "name": z} for z, zid in self.zones.items() if name in (None, z)])
        if zone_id not in self.zones.values():
            return self.envelope(errors=[{"code": 7003, "message": "Could not route to zone"}], status=404)
        if record_id is None and request.method == "GET":
            return self.envelope([r for r in self.records.values()
                                  if r["type"] == request.args.get("type", r["type"])
                                  and r["name"] == request.args.get("name", r["name"])])
        if record_id is None and request.method == "POST":
            missing = {"type", "name", "content"} - set(data)
            unknown = set(data) - {"type", "name", "content", "ttl", "proxied", "comment", "tags"}
            if missing or unknown:
                self.problems.append(f"POST body missing {missing} unknown {unknown}")
                return self.envelope(errors=[{"code": 9005, "message": "Content for A record is invalid"}],
                                     status=400)
            if data["type"] not in ("A", "AAAA") or not _valid(data["type"], data["content"]):
                return self.envelope(errors=[{"code": 9005, "message": "Content for A record is invalid"}],
                                     status=400)
            rid = self.add_record(data["name"], data["type"], data["content"], data.get("ttl", 1),
                                  data.get("proxied", False))
            return self.envelope(self.records[rid])
        if record_id is not None and request.method == "PATCH":
            record = self.records.get(record_id)
            if record is None:
                return self.envelope(errors=[{"code": 81044, "message": "Record does not exist."}], status=404)
            if "content" in data and not _valid(record["type"], data["content"]):
                return self.envelope(errors=[{"code": 9005, "message": "Content for A record is invalid"}],
                                     status=400)
            record.update({k: v for k, v in data.items() if k in ("content", "ttl", "proxied")})
            return self.envelope(record)
        return self.envelope(errors=[{"code": 10000, "message": "method not allowed"}], status=405)


def _valid(rtype: str, content: str) -> bool:
    try:
        return ipaddress.ip_address(content).version == (4 if rtype == "A" else 6)
    except ValueError:
        return False


# --------------------------------------------------------------------------- the fakes' own strictness


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize("headers, query, problem", [
    ({}, "hostname=h.example&myip=11.0.0.2", "no basic auth"),
    ({"Authorization": "Basic bWU6d3Jvbmc=", "User-Agent": "natlink/0.1.0 (x)"}, "hostname=h&myip=11.0.0.2",
     "wrong credentials"),
    ({"User-Agent": "python-urllib/3"}, "hostname=h&myip=11.0.0.2", "bad User-Agent"),
    ({"User-Agent": "natlink/0.1.0 (x)"}, "hostname=h&myip=11.0.0.2&wildcard=ON", "unknown parameters"),
    ({"User-Agent": "natlink/0.1.0 (x)"}, "hostname=h&myip=not-an-ip", "is not an address"),
])
def test_dyndns2_fake_rejects_off_spec_requests(httpserver: Any, headers: dict[str, str], query: str,
                                                problem: str) -> None:
    fake = Dyndns2Fake()
    httpserver.expect_request("/nic/update").respond_with_handler(fake.handler)
    status, _ = _get(httpserver.url_for("/nic/update") + "?" + query, headers)
    assert status == 400
    assert any(problem in p for p in fake.problems), fake.problems
    assert fake.requests == []


def test_cloudflare_fake_rejects_wrong_token(httpserver: Any) -> None:
    fake = CloudflareFake()
    httpserver.expect_request(re.compile("/client/v4/.*")).respond_with_handler(fake.handler)
    status, body = _get(httpserver.url_for("/client/v4/zones"), {"Authorization": "Bearer nope",
                                                                  "User-Agent": "natlink/0.1.0 (x)"})
    assert status == 403 and json.loads(body)["errors"][0]["code"] == 10000


def test_duck_fake_answers_ko_for_wrong_token(httpserver: Any) -> None:
    fake = DuckFake()
    httpserver.expect_request("/update").respond_with_handler(fake.handler)
    status, body = _get(httpserver.url_for("/update") + "?domains=myhome&token=wrong",
                        {"User-Agent": "natlink/0.1.0 (x)"})
    assert (status, body) == (200, "KO")
