"""Where a secret would cross the network in clear text: an http:// URL to anything but loopback.

Pure decisions used by the config loader, which refuses such a URL for an entry with credentials
unless that entry says ``allow_insecure_http = true`` (and then warns on every run).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

ALLOW_KEY = "allow_insecure_http"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) and the name localhost (RFC 6761: always loopback)."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def cleartext_host(url: str | None) -> str | None:
    """The host an http:// URL would send to in clear text; None for https, other schemes, or loopback.

    A bare host name (no scheme) is not cleartext: natlink's providers prefix https:// to it."""
    if not url or "://" not in url:
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() != "http" or not parts.hostname:
        return None
    return None if is_loopback(parts.hostname) else parts.hostname


def refusal(what: str, url: str, host: str) -> str:
    """The config error for a refused URL: the problem and both fixes, in one line."""
    https = "https://" + url.split("://", 1)[1]
    return (f"{url!r} would send {what} in clear text (http://) to {host}; use {https!r}, or set "
            f"{ALLOW_KEY} = true in this entry if the network path is trusted")


def warning(entry: str, what: str, host: str) -> str:
    return (f"{entry}: {ALLOW_KEY} = true: {what} go to {host} over plain http://, readable by anyone on the "
            "path; use https:// when you can")
