"""The one small interface every DDNS provider implements, and the typed outcome it returns.

A provider turns "publish these addresses for these names" into requests and maps every answer to a
ProviderResult whose kind drives policy: success, fatal (stop this entry, say why) or transient
(back off and retry). Providers never raise for a provider-side failure and never put a secret into
a message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from natlink.net.http import HttpClient
from natlink.secrets import Secret, redact

if TYPE_CHECKING:
    from natlink.ddns.registry import ProviderSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderResult:
    outcome: str  # provider's own code, lower-case where it has one: "good", "nochg", "badauth", "timeout", ...
    kind: str  # "success" | "fatal" | "transient"
    message: str  # one line for a person: what happened and, when not success, what to do
    retry_after: float | None = None  # the provider asked us to wait this long (HTTP 429 Retry-After)
    hostname: str | None = None  # the name this answer is about (None: every name of the request)
    family: int | None = None  # 4 or 6 when the answer covers one record family only
    per_name: bool = False  # a fatal answer about this name only ("no such host"): the other names go on
    parts: tuple["ProviderResult", ...] = ()  # the per-name / per-family answers a combined result is made of

    @property
    def ok(self) -> bool:
        return self.kind == "success"

    def about(self, hostname: str | None = None, family: int | None = None) -> "ProviderResult":
        """This answer tagged with the name / family it concerns (keeps tags already set)."""
        return replace(self, hostname=self.hostname or hostname, family=self.family or family)

    def leaves(self) -> list["ProviderResult"]:
        """The single answers this result is made of (itself when it has no parts)."""
        return [leaf for part in self.parts for leaf in part.leaves()] if self.parts else [self]


def success(outcome: str, message: str) -> ProviderResult:
    return ProviderResult(outcome, "success", message)


def fatal(outcome: str, message: str, per_name: bool = False) -> ProviderResult:
    return ProviderResult(outcome, "fatal", message, per_name=per_name)


def transient(outcome: str, message: str, retry_after: float | None = None) -> ProviderResult:
    return ProviderResult(outcome, "transient", message, retry_after=retry_after)


def combine(results: list[ProviderResult]) -> ProviderResult:
    """One result for several answers (names, families): fatal beats transient beats success. The answers
    stay available as `parts`, so each name's and family's own outcome can be recorded."""
    if not results:
        return success("nochg", "nothing to send")
    if len(results) == 1:
        return results[0]
    parts = tuple(results)
    for kind in ("fatal", "transient"):
        for r in results:
            if r.kind == kind:
                return replace(r, hostname=None, family=None, parts=parts)
    changed = [r for r in results if r.outcome not in ("nochg", "unchanged")]
    first = changed[0] if changed else results[0]
    return ProviderResult(first.outcome, "success", "; ".join(r.message for r in results), parts=parts)


def http_trouble(label: str, status: int, retry_after: str | None = None) -> ProviderResult | None:
    """The HTTP answers every update protocol treats alike: 429 waits (honouring Retry-After), 5xx retries
    later with backoff. None for any other status (the protocol's own answer decides)."""
    if status == 429:
        return transient("http-429", f"{label} says too many requests (HTTP 429); natlink waits before retrying",
                         retry_after_seconds(retry_after))
    if status >= 500:
        return transient(f"http-{status}", f"{label} answered HTTP {status}; natlink retries later")
    return None


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None  # an HTTP date: rare for these APIs, fall back to our own backoff


class Provider:
    """Base for providers: holds the entry, its resolved secrets, its registry spec and an HTTP client.

    Subclasses implement `update_name(hostname, addresses)` (the base `update` loops over `self.hostnames`,
    the names due this round, and stops at the first entry-wide fatal or transient answer), or override
    `update(addresses)` when one request carries several names (then tag each answer with `.about(name)`).
    `addresses` maps family (4/6) to the address to publish. `verify(addresses)` may return a problem
    sentence (None = fine). See natlink/ddns/registry.py for how a provider is added.
    """

    name = "base"

    def __init__(self, entry: Any, secrets: dict[str, Secret], http: HttpClient | None = None,
                 timeout: float = 10.0, spec: "ProviderSpec | None" = None) -> None:
        self.entry = entry
        self.secrets = secrets
        self.http = http or HttpClient(timeout=timeout)
        self.timeout = timeout
        self.spec = spec
        self.hostnames: tuple[str, ...] = tuple(entry.hostnames)  # the updater narrows this to the names due

    def option(self, key: str, default: Any = None) -> Any:
        value = self.entry.options.get(key)
        return default if value is None else value

    def preset(self, key: str, default: Any = None) -> Any:
        """A protocol constant from the registry entry (e.g. the dyndns2 path), else default."""
        value = self.spec.preset.get(key) if self.spec is not None else None
        return default if value is None else value

    @property
    def supports_ipv6(self) -> bool:
        return self.spec is None or self.spec.family_rule(self.entry.options) != "ipv4-only"

    def safe(self, text: str) -> str:
        """Any text that might echo a request or answer, with every secret of this entry blanked."""
        return redact(text, list(self.secrets.values()))

    def update(self, addresses: dict[int, str]) -> ProviderResult:
        results: list[ProviderResult] = []
        for hostname in self.hostnames:
            result = self.update_name(hostname, addresses).about(hostname)
            results.append(result)
            if result.kind == "transient" or (result.kind == "fatal" and not result.per_name):
                break  # the same answer waits for every name: don't hammer the provider with it
        return combine(results)

    def update_name(self, hostname: str, addresses: dict[int, str]) -> ProviderResult:  # pragma: no cover
        raise NotImplementedError

    def verify(self, addresses: dict[int, str]) -> str | None:
        """Read the names back from the zone's authoritative name server (providers with an API read-back
        may override this)."""
        from natlink.ddns import live  # dnspython loads only when a record is checked
        return live.check(self.hostnames, addresses, live.target(self.entry.options, self.spec), self.spec)

    @property
    def requests_sent(self) -> int:
        return self.http.sent


def short(text: str, limit: int = 80) -> str:
    """An answer body fit for a one-line message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
