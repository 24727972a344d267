"""Namecheap dynamic DNS and FreeDNS (afraid.org) against strict local servers: request shape as documented,
every documented answer, secrets never in output."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from natlink.ddns import registry
from natlink.net.http import HttpClient
from natlink.ddns.namecheap import parse_answer as namecheap_answer, relative_host
from natlink.ddns.updater import update_all
from natlink.publicip import PublicIpReport
from natlink.secrets import read_secret
from natlink.state import StateStore
from test_ddns_fakes import UA_RE, load, write_secret

NC_PASSWORD = "nc-ddns-3f1c9a0e8b7d4c2a"
TOKEN4 = "fd4-U2FsdGVkX19aBcDeFgHiJk"
TOKEN6 = "fd6-V3GtdHVkY20bCdEfGhIjKl"
IP, IP2, IP6 = "11.0.0.2", "11.0.0.3", "2001:db8::7"


def _xml(errors: list[str], ip: str = "") -> str:
    errs = "".join(f"<Err{i}>{e}</Err{i}>" for i, e in enumerate(errors, 1))
    return ('<?xml version="1.0" encoding="utf-16"?>\r\n<interface-response><Command>SETDNSHOST</Command>'
            f"<Language>eng</Language>{f'<IP>{ip}</IP>' if ip else ''}<ErrCount>{len(errors)}</ErrCount>"
            f"<errors>{errs}</errors><ResponseCount>{len(errors)}</ResponseCount><responses />"
            "<Done>true</Done><debug><![CDATA[]]></debug></interface-response>")


@dataclass
class NamecheapFake:
    """GET /update with exactly host, domain, password, ip; XML answers as Namecheap gives them."""

    domain: str = "example.com"
    hosts: tuple[str, ...] = ("@", "home")
    override: tuple[int, str] | None = None
    records: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def handler(self, request: Request) -> Response:
        problems = []
        if request.method != "GET" or request.path != "/update":
            problems.append(f"{request.method} {request.path}")
        if set(request.args) != {"host", "domain", "password", "ip"}:
            problems.append(f"parameters {sorted(request.args)}")
        if not UA_RE.match(request.headers.get("User-Agent", "")):
            problems.append("bad User-Agent")
        if problems:
            self.problems += problems
            return Response("bad request", status=400)
        self.requests.append(dict(request.args))
        if self.override is not None:
            return Response(self.override[1], status=self.override[0], content_type="text/html")
        a = request.args
        if a["password"] != NC_PASSWORD:
            body = _xml(["Passwords do not match"])
        elif a["domain"] != self.domain:
            body = _xml(["Domain name not found"])
        elif a["host"] not in self.hosts:
            body = _xml(["No Records updated. A record not Found;"])
        else:
            self.records[a["host"]] = a["ip"]
            body = _xml([], a["ip"])
        return Response(body, content_type="text/html")


@pytest.mark.parametrize("hostname, domain, host", [
    ("example.com", "example.com", "@"), ("home.example.com", "example.com", "home"),
    ("a.b.example.com.", "Example.com", "a.b"), ("other.org", "example.com", None),
    ("notexample.com", "example.com", None),
])
def test_relative_host(hostname: str, domain: str, host: str | None) -> None:
    assert relative_host(hostname, domain) == host


def _namecheap(tmp_path: Path, httpserver: Any, fake: NamecheapFake, hostnames: tuple[str, ...],
               domain: str = "example.com") -> Any:
    httpserver.expect_request("/update").respond_with_handler(fake.handler)
    pw = write_secret(tmp_path, "nc", NC_PASSWORD)
    names = ", ".join(f'"{h}"' for h in hostnames)
    return load(tmp_path, f'[[ddns]]\nname = "nc"\nprovider = "namecheap"\nhostnames = [{names}]\n'
                          f'domain = "{domain}"\nserver = "{httpserver.url_for("/").rstrip("/")}"\n'
                          f'password_file = "{pw}"\nverify = false\n')


def _report(v4: str | None, v6: str | None = None) -> PublicIpReport:
    return PublicIpReport(public_ipv4=v4, public_ipv6=v6, router_wan_ipv4=v4, verdict="public", problem=None)


def test_namecheap_round_per_name(tmp_path: Path, httpserver: Any) -> None:
    fake = NamecheapFake()
    cfg = _namecheap(tmp_path, httpserver, fake, ("example.com", "home.example.com", "gone.example.com"))
    store = StateStore(cfg.service.state_dir)
    (result,) = update_all(cfg, store, _report(IP), now=1000.0, rng=random.Random(1))
    assert fake.problems == [] and fake.records == {"@": IP, "home": IP}
    assert [r["host"] for r in fake.requests] == ["@", "home", "gone"]
    assert [(h.hostname, h.outcome, h.kind) for h in result.hosts] == [
        ("example.com", "good", "success"), ("home.example.com", "good", "success"),
        ("gone.example.com", "nohost", "fatal")]
    assert "A + Dynamic DNS record" in result.hosts[2].message
    (again,) = update_all(cfg, store, _report(IP2), now=1300.0, rng=random.Random(1))
    assert [r["host"] for r in fake.requests[3:]] == ["@", "home"]  # the missing host is not asked again
    everything = json.dumps(result.to_json()) + json.dumps(again.to_json()) + store.path("ddns-nc").read_text()
    assert NC_PASSWORD not in everything


@pytest.mark.parametrize("domain, password, outcome, words", [
    ("example.org", NC_PASSWORD, "nodomain", "fix the domain option"),
    ("example.com", "wrong-password", "badauth", "Dynamic DNS password"),
])
def test_namecheap_entry_wide_errors_stop_after_one_request(tmp_path: Path, httpserver: Any, domain: str,
                                                             password: str, outcome: str, words: str) -> None:
    fake = NamecheapFake()
    cfg = _namecheap(tmp_path, httpserver, fake, (domain, f"home.{domain}"), domain=domain)
    entry = cfg.ddns[0]
    secrets = {"password": read_secret(entry.secrets["password"])}
    if password != NC_PASSWORD:
        write_secret(tmp_path, "nc", password)
        secrets = {"password": read_secret(entry.secrets["password"])}
    result = registry.PROVIDERS["namecheap"].make(entry, secrets, http=HttpClient(timeout=5)).update({4: IP})
    assert (result.outcome, result.kind) == (outcome, "fatal") and words in result.message
    assert len(fake.requests) == 1 and password not in result.message


@pytest.mark.parametrize("status, body, outcome, kind", [
    (200, _xml([], IP), "good", "success"),
    (200, _xml([], "11.0.0.99"), "mismatch", "transient"),
    (200, _xml(["Invalid IP"]), "badip", "fatal"),
    (200, _xml(["Something new"]), "rejected", "fatal"),
    (200, "<html>maintenance</html>", "unexpected", "transient"),
    (200, '<!DOCTYPE x [<!ENTITY a "aaaa">]><interface-response>&a;</interface-response>', "unexpected",
     "transient"),  # entity declarations are refused, never expanded
    (503, "", "http-503", "transient"),
    (429, "", "http-429", "transient"),
    (404, "", "http-404", "fatal"),
])
def test_namecheap_answers(status: int, body: str, outcome: str, kind: str) -> None:
    result = namecheap_answer(status, body, IP, "home.example.com")
    assert (result.outcome, result.kind) == (outcome, kind), result.message


def test_namecheap_is_ipv4_only(tmp_path: Path, httpserver: Any) -> None:
    fake = NamecheapFake()
    cfg = _namecheap(tmp_path, httpserver, fake, ("home.example.com",))
    entry = cfg.ddns[0]
    provider = registry.PROVIDERS["namecheap"].make(entry, {"password": read_secret(entry.secrets["password"])})
    assert provider.update({6: IP6}).outcome == "unsupported" and fake.requests == []
    assert provider.update({4: IP, 6: IP6}).ok and [r["ip"] for r in fake.requests] == [IP]


# --------------------------------------------------------------------------- FreeDNS


@dataclass
class FreednsFake:
    """GET /u/<token>/?ip=X; one record per token; the v2 API's one-line answers."""

    tokens: dict[str, tuple[str, int]] = field(default_factory=lambda: {TOKEN4: ("home.mooo.com", 4),
                                                                        TOKEN6: ("home.mooo.com", 6)})
    current: dict[str, str] = field(default_factory=dict)
    override: tuple[int, str] | None = None
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def handler(self, request: Request) -> Response:
        m = re.fullmatch(r"/u/([^/]+)/", request.path)
        problems = []
        if request.method != "GET" or not m:
            problems.append(f"{request.method} {request.path}")
        if set(request.args) != {"ip"}:
            problems.append(f"parameters {sorted(request.args)}")
        if not UA_RE.match(request.headers.get("User-Agent", "")):
            problems.append("bad User-Agent")
        if problems:
            self.problems += problems
            return Response("ERROR: Invalid update URL (2)", status=200)
        assert m is not None
        token, ip = m.group(1), request.args["ip"]
        self.requests.append((token, dict(request.args)))
        if self.override is not None:
            return Response(self.override[1], status=self.override[0], content_type="text/plain")
        if token not in self.tokens:
            return Response("ERROR: Unable to locate this record (changed password recently? deleted and re-created "
                            "this dns entry?) (double check username/password are correct)", content_type="text/plain")
        host, family = self.tokens[token]
        if (":" in ip) != (family == 6):
            return Response(f"ERROR: Address {ip} is not a valid IPv{family} address", content_type="text/plain")
        if self.current.get(token) == ip:
            return Response(f"No IP change detected for {host} with IP {ip}, skipping update",
                            content_type="text/plain")
        self.current[token] = ip
        return Response(f"Updated 1 host(s) {host} to {ip} in 0.142 seconds", content_type="text/plain")


def _freedns(tmp_path: Path, httpserver: Any, fake: FreednsFake, extra: str) -> Any:
    httpserver.expect_request(re.compile("/u/.*")).respond_with_handler(fake.handler)
    return load(tmp_path, f'[[ddns]]\nname = "fd"\nprovider = "freedns"\nhostnames = ["home.mooo.com"]\n'
                          f'server = "{httpserver.url_for("/").rstrip("/")}"\nverify = false\n{extra}')


def test_freedns_one_request_per_family_with_its_own_token(tmp_path: Path, httpserver: Any) -> None:
    fake = FreednsFake()
    t4, t6 = write_secret(tmp_path, "t4", TOKEN4), write_secret(tmp_path, "t6", TOKEN6)
    cfg = _freedns(tmp_path, httpserver, fake, f'ipv6 = true\ntoken_file = "{t4}"\ntoken_v6_file = "{t6}"\n')
    store = StateStore(cfg.service.state_dir)
    (first,) = update_all(cfg, store, _report(IP, IP6), now=1000.0, rng=random.Random(1))
    assert fake.problems == [] and fake.requests == [(TOKEN4, {"ip": IP}), (TOKEN6, {"ip": IP6})]
    assert first.outcome == "good" and first.hosts[0].answers == {"ipv4": "good", "ipv6": "good"}
    (second,) = update_all(cfg, store, _report(IP2, IP6), now=1300.0, rng=random.Random(1))
    assert fake.requests[2:] == [(TOKEN4, {"ip": IP2})]  # AAAA unchanged: not sent (no nochg provoked)
    text = json.dumps([first.to_json(), second.to_json()]) + store.path("ddns-fd").read_text()
    assert TOKEN4 not in text and TOKEN6 not in text


@pytest.mark.parametrize("override, outcome, kind", [
    (None, "good", "success"),
    ((200, f"No IP change detected for home.mooo.com with IP {IP}, skipping update"), "nochg", "success"),
    ((200, "Updated 1 host(s) home.mooo.com to 11.0.0.99 in 0.1 seconds"), "mismatch", "transient"),
    ((200, "ERROR: Unable to locate this record (changed password recently? deleted and re-created this dns "
           "entry?) (double check username/password are correct)"), "badtoken", "fatal"),
    ((200, "ERROR: Invalid update URL (2)"), "error", "fatal"),
    ((503, "Service Unavailable"), "http-503", "transient"),
    ((429, ""), "http-429", "transient"),
    ((200, "<html>Cloudflare challenge</html>"), "unexpected", "transient"),
])
def test_freedns_answers(tmp_path: Path, httpserver: Any, override: tuple[int, str] | None, outcome: str,
                         kind: str) -> None:
    fake = FreednsFake(override=override)
    t4 = write_secret(tmp_path, "t4", TOKEN4)
    entry = _freedns(tmp_path, httpserver, fake, f'token_file = "{t4}"\n').ddns[0]
    provider = registry.PROVIDERS["freedns"].make(entry, {"token": read_secret(entry.secrets["token"])},
                                                  http=HttpClient(timeout=5))
    result = provider.update({4: IP})
    assert (result.outcome, result.kind) == (outcome, kind), result.message
    assert TOKEN4 not in result.message and fake.problems == []


def test_freedns_unreachable_message_hides_the_token_in_the_path(tmp_path: Path) -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t4 = write_secret(tmp_path, "t4", TOKEN4)
    entry = load(tmp_path, f'[[ddns]]\nname = "fd"\nprovider = "freedns"\nhostnames = ["home.mooo.com"]\n'
                           f'server = "http://127.0.0.1:{port}"\ntoken_file = "{t4}"\n').ddns[0]
    result = registry.PROVIDERS["freedns"].make(entry, {"token": read_secret(entry.secrets["token"])}).update({4: IP})
    assert result.outcome == "connect" and TOKEN4 not in result.message and "/u/" in result.message


def test_freedns_needs_the_token_of_each_family(tmp_path: Path, httpserver: Any) -> None:
    t4 = write_secret(tmp_path, "t4", TOKEN4)
    cfg = _freedns(tmp_path, httpserver, FreednsFake(), f'ipv6 = true\ntoken_file = "{t4}"\n')
    (result,) = update_all(cfg, StateStore(cfg.service.state_dir), _report(IP, IP6), now=1.0, rng=random.Random(1))
    assert result.outcome == "config" and "token_v6_file" in result.message
