"""Namecheap dynamic DNS: GET /update?host=H&domain=D&password=P&ip=X, one request per name, an XML answer.

`host` is the name relative to the `domain` option ("@" for the domain itself, "home", "*"); the password is
the domain's Dynamic DNS password (Advanced DNS tab), not the account's. Namecheap's dynamic DNS sets A
records only. The answer is an <interface-response> whose ErrCount/errors say what went wrong; it declares
utf-16 but is sent as UTF-8, so the declaration is dropped before parsing (defusedxml, on a size-capped body).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from natlink.ddns.base import Provider, ProviderResult, http_trouble, fatal, short, success, transient
from natlink.ddns.urls import base_url
from natlink.net.http import HttpError

MAX_ANSWER = 16 * 1024  # a real answer is under 1 KB
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")

# (words in the error text, outcome, per name?, what to do); first match wins.
_ERRORS = (
    ("passwords do not match", "badauth", False,
     "the Dynamic DNS password was refused; use the one shown under Advanced DNS > Dynamic DNS for this domain"),
    ("domain name not found", "nodomain", False,
     "the domain is not in this account or has no dynamic DNS; fix the domain option"),
    ("record not found", "nohost", True,
     "there is no A record for this host; add it under Advanced DNS (as an A + Dynamic DNS record)"),
    ("invalid ip", "badip", False, "Namecheap refused the address; please report this as a natlink bug"),
)


def relative_host(hostname: str, domain: str) -> str | None:
    """"home.example.com" in "example.com" -> "home"; the domain itself -> "@"; outside it -> None."""
    name, zone = hostname.rstrip(".").lower(), domain.rstrip(".").lower()
    if name == zone:
        return "@"
    return name[: -len(zone) - 1] if name.endswith("." + zone) else None


def parse_answer(status: int, body: str, ip: str, hostname: str, retry_after: str | None = None) -> ProviderResult:
    """Map one Namecheap answer to a typed outcome (pure)."""
    trouble = http_trouble("Namecheap", status, retry_after)
    if trouble is not None:
        return trouble
    if status != 200:
        return fatal(f"http-{status}", f"Namecheap answered HTTP {status} for {hostname}; check the server option")
    try:
        root = ElementTree.fromstring(_DECLARATION.sub("", body, count=1))
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return transient("unexpected", f"Namecheap answered {short(body)!r}, which is not its XML answer; "
                                       "retrying later")
    if root.tag != "interface-response":
        return transient("unexpected", f"Namecheap answered <{root.tag}>, not <interface-response>; retrying later")
    errors = _texts(root.find("errors"))
    count = _int(root.findtext("ErrCount"))
    if count or errors:
        text = "; ".join(errors) or f"{count} error(s)"
        lowered = text.lower()
        for words, outcome, per_name, advice in _ERRORS:
            if words in lowered:
                return fatal(outcome, f"Namecheap answered {text!r} for {hostname}: {advice}", per_name=per_name)
        return fatal("rejected", f"Namecheap answered {text!r} for {hostname}; fix the entry (natlink does not retry "
                                 "an answer it cannot classify)")
    if (root.findtext("Done") or "").strip().lower() != "true":
        return transient("unexpected", f"Namecheap's answer for {hostname} is not Done; retrying later")
    recorded = (root.findtext("IP") or "").strip()
    if recorded:
        try:
            if str(ipaddress.ip_address(recorded)) != ip:
                return transient("mismatch", f"Namecheap recorded {recorded} for {hostname}, not {ip}; retrying later")
        except ValueError:
            pass
    return success("good", f"{hostname}: updated ({ip})")


def _texts(element: Element | None) -> list[str]:
    children = list(element) if element is not None else []
    return [" ".join((child.text or "").split()) for child in children if (child.text or "").strip()]


def _int(text: str | None) -> int:
    try:
        return int((text or "0").strip())
    except ValueError:
        return 0


class NamecheapProvider(Provider):
    name = "namecheap"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url = base_url(str(self.option("server", self.preset("server")))) + "/update"

    def update(self, addresses: dict[int, str]) -> ProviderResult:
        if 4 not in addresses:
            return fatal("unsupported", "Namecheap dynamic DNS sets A records only; set ipv4 = true, ipv6 = false")
        return super().update({4: addresses[4]})

    def update_name(self, hostname: str, addresses: dict[int, str]) -> ProviderResult:
        domain = str(self.option("domain"))
        host = relative_host(hostname, domain)
        if host is None:
            return fatal("notindomain", f"{hostname} is not in the domain {domain}; fix hostnames or domain",
                         per_name=True)
        ip = addresses[4]
        params = {"host": host, "domain": domain, "password": self.secrets["password"].value, "ip": ip}
        try:
            resp = self.http.request("GET", self.url, params=params)
        except HttpError as exc:
            return transient(exc.kind, self.safe(f"Namecheap: {exc.message}; natlink retries later"))
        if len(resp.body) > MAX_ANSWER:
            return transient("too-large", f"Namecheap's answer for {hostname} is over {MAX_ANSWER} bytes; retrying later")
        result = parse_answer(resp.status, resp.text(), ip, hostname, resp.headers.get("retry-after"))
        return replace(result, message=self.safe(result.message)).about(hostname, 4)
