"""What every strict local record-API fake shares: a record store, the list of off-spec findings, a
request log, one-shot error injection, and helpers to run a provider against it through a real config.

Each provider's own fake (in its test module) checks the request as strictly as that provider's
documentation and answers in its documented shapes; a fake that finds a problem answers the way the real
service does AND records the problem, so tests assert `fake.problems == []`.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug import Request, Response

from natlink.secrets import read_secret
from test_ddns_fakes import UA_RE, load, write_secret

IP, IP2, IP6 = "11.0.0.2", "11.0.0.3", "2001:db8::5"


def valid_address(rtype: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value).version == (4 if rtype == "A" else 6)
    except ValueError:
        return False


@dataclass
class FakeBase:
    """Records by id: {"name": relative name, "type", "value", "ttl"}, plus findings and a request log."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path or action)
    fail: tuple[int, Any, dict[str, str]] | None = None  # answered to every request when set
    ids: Any = field(default_factory=lambda: itertools.count(1000))

    def add(self, name: str, rtype: str, value: str, ttl: int = 600) -> str:
        rid = str(next(self.ids))
        self.records[rid] = {"name": name, "type": rtype, "value": value, "ttl": ttl}
        return rid

    def find(self, name: str, rtype: str) -> list[tuple[str, dict[str, Any]]]:
        return [(rid, r) for rid, r in self.records.items() if r["name"] == name and r["type"] == rtype]

    def values(self, name: str, rtype: str) -> list[str]:
        return sorted(r["value"] for _, r in self.find(name, rtype))

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def check_agent(self, request: Request) -> None:
        if not UA_RE.match(request.headers.get("User-Agent", "")):
            self.problem(f"bad User-Agent {request.headers.get('User-Agent')!r}")

    def json_body(self, request: Request, content_type: str = "application/json") -> Any:
        if request.headers.get("Content-Type", "").split(";")[0].strip() != content_type:
            self.problem(f"content type {request.headers.get('Content-Type')!r}, not {content_type}")
        try:
            return json.loads(request.get_data() or b"null")
        except ValueError:
            self.problem("body is not JSON")
            return None

    def injected(self) -> Response | None:
        if self.fail is None:
            return None
        status, payload, headers = self.fail
        return Response(json.dumps(payload), status=status, headers=headers, content_type="application/json")


def answer(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


def entry_for(tmp_path: Path, provider: str, server: str, secrets: dict[str, str], extra: str = "",
              hostnames: tuple[str, ...] = ("home.example.com",)) -> tuple[Any, dict[str, Any]]:
    """A [[ddns]] entry parsed by natlink's own loader, and its secrets read from *_file keys."""
    keys = "".join(f'{k}_file = "{write_secret(tmp_path, k, v)}"\n' for k, v in secrets.items())
    names = ", ".join(f'"{h}"' for h in hostnames)
    entry = load(tmp_path, f'[[ddns]]\nname = "t"\nprovider = "{provider}"\nhostnames = [{names}]\n'
                           f'server = "{server}"\n{keys}{extra}').ddns[0]
    return entry, {k: read_secret(ref) for k, ref in entry.secrets.items()}


def provider_for(cls: Any, tmp_path: Path, httpserver: Any, fake: Any, path: str, secrets: dict[str, str],
                 extra: str = "", hostnames: tuple[str, ...] = ("home.example.com",)) -> Any:
    """Provider ``cls`` configured with the local server at ``path`` as its server, every request answered by
    ``fake.handler``."""
    httpserver.expect_request(PATH_ANY).respond_with_handler(fake.handler)
    entry, read = entry_for(tmp_path, cls.name, httpserver.url_for(path).rstrip("/"), secrets, extra, hostnames)
    return cls(entry, read)


def assert_secret_free(secrets: dict[str, str], *texts: Any) -> None:
    for text in texts:
        for value in secrets.values():
            assert value not in str(text) and value not in repr(text)


PATH_ANY = re.compile(r".*")
