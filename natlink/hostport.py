"""PURE: host and port in text, the one place that reads and writes "ADDR:PORT" ("[v6]:port" included)."""

from __future__ import annotations

import ipaddress
import re

_TARGET = re.compile(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\s\[\]]+):(\d{1,5})")


def parse_target(text: str, *, any_port: bool = False) -> tuple[str, int] | None:
    """"host:port" or "[v6]:port" -> (host, port); None when malformed. ``any_port``: port 0 too (a listen
    address where the kernel picks a free port: tests)."""
    m = _TARGET.fullmatch(text)
    if not m:
        return None
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return (host, int(port)) if (0 if any_port else 1) <= int(port) <= 65535 else None


def parse_server(text: str, default_port: int) -> tuple[str, int]:
    """A server with an optional port: "11.0.0.1", "11.0.0.1:5353", "ns1.example.net", "[2001:db8::1]:53",
    "2001:db8::1" -> (host, port)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    try:
        ipaddress.ip_address(text)
        return text, default_port
    except ValueError:
        pass
    host, sep, port = text.rpartition(":")
    return (host, int(port)) if sep and port.isdigit() else (text, default_port)


def join(host: str, port: int) -> str:
    """(host, port) -> "host:port", "[v6]:port"."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
