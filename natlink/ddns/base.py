"""The one small interface every DDNS provider implements, and the typed outcome it returns.

A provider turns "publish these addresses for these names" into requests and maps every answer to a
ProviderResult whose kind drives policy: success, fatal (stop this entry, say why) or transient
(back off and retry). Providers never raise for a provider-side failure and never put a secret into
a message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from natlink.ddns.http import HttpClient
from natlink.secrets import Secret, redact

log = logging.getLogger(__name__)

KINDS = ("success", "fatal", "transient")


@dataclass(frozen=True)
class ProviderResult:
    outcome: str  # provider's own code, lower-case where it has one: "good", "nochg", "badauth", "timeout", ...
    kind: str  # "success" | "fatal" | "transient"
    message: str  # one line for a person: what happened and, when not success, what to do
    retry_after: float | None = None  # the provider asked us to wait this long (HTTP 429 Retry-After)

    @property
    def ok(self) -> bool:
        return self.kind == "success"


def success(outcome: str, message: str) -> ProviderResult:
    return ProviderResult(outcome, "success", message)


def fatal(outcome: str, message: str) -> ProviderResult:
    return ProviderResult(outcome, "fatal", message)


def transient(outcome: str, message: str, retry_after: float | None = None) -> ProviderResult:
    return ProviderResult(outcome, "transient", message, retry_after=retry_after)


def worst(results: list[ProviderResult]) -> ProviderResult:
    """One result for an entry with several names: fatal beats transient beats success."""
    for kind in ("fatal", "transient"):
        for r in results:
            if r.kind == kind:
                return r
    if not results:
        return success("nochg", "nothing to send")
    if len(results) == 1:
        return results[0]
    changed = [r for r in results if r.outcome not in ("nochg", "unchanged")]
    first = changed[0] if changed else results[0]
    return ProviderResult(first.outcome, "success", "; ".join(r.message for r in results))


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None  # an HTTP date: rare for these APIs, fall back to our own backoff


class Provider:
    """Base for providers: holds the entry, its resolved secrets and an HTTP client.

    Subclasses implement `update(addresses)`; `addresses` maps family (4/6) to the address to publish
    for every hostname of the entry. `verify(addresses)` may return a problem sentence (None = fine).
    """

    name = "base"
    supports_ipv6 = True

    def __init__(self, entry: Any, secrets: dict[str, Secret], http: HttpClient | None = None,
                 timeout: float = 10.0) -> None:
        self.entry = entry
        self.secrets = secrets
        self.http = http or HttpClient(timeout=timeout)
        self.timeout = timeout

    def option(self, key: str, default: Any = None) -> Any:
        value = self.entry.options.get(key)
        return default if value is None else value

    def safe(self, text: str) -> str:
        """Any text that might echo a request or answer, with every secret of this entry blanked."""
        return redact(text, list(self.secrets.values()))

    def update(self, addresses: dict[int, str]) -> ProviderResult:  # pragma: no cover - interface
        raise NotImplementedError

    def verify(self, addresses: dict[int, str]) -> str | None:
        return None

    @property
    def requests_sent(self) -> int:
        return self.http.sent


def short(text: str, limit: int = 80) -> str:
    """An answer body fit for a one-line message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
