"""Ask one source for an address: the router, an HTTP(S) echo service, or a local interface.

Each function returns a SourceAnswer and never raises for a source's failure: one broken source is
evidence missing, not a reason to stop.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import subprocess
import time
from typing import Any, Protocol

from natlink.net.http import HttpClient, HttpError
from natlink.publicip.verdict import SourceAnswer

log = logging.getLogger(__name__)

MAX_ECHO_BODY = 128  # an address plus a newline; anything longer is not a plain-text echo


class RouterLike(Protocol):
    def external_ip(self) -> str | None: ...


def parse_echo_body(body: bytes, content_type: str | None = None) -> tuple[str | None, str | None]:
    """Strictly one IP address in a plain-text body -> (address, None); otherwise (None, why)."""
    if content_type and not content_type.lower().startswith("text/plain") and "html" in content_type.lower():
        return None, f"answered {content_type.split(';')[0]}, not a plain-text address"
    if len(body) > MAX_ECHO_BODY:
        return None, f"answered {len(body)} bytes, not a single address"
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        return None, "answered non-ASCII bytes, not an address"
    if not text:
        return None, "answered an empty body"
    words = text.split()
    if len(words) != 1:
        return None, f"answered {len(words)} words ({_show(text)}), not exactly one address"
    try:
        return str(ipaddress.ip_address(words[0])), None
    except ValueError:
        return None, f"answered {_show(text)}, not an IP address"


def _show(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= 40 else text[:37] + "...")


def query_echo(url: str, family: int, timeout: float) -> SourceAnswer:
    client = HttpClient(timeout=timeout, family="ipv6" if family == 6 else "ipv4",
                        max_body=MAX_ECHO_BODY)
    started = time.monotonic()
    try:
        resp = client.request("GET", url)
    except HttpError as exc:
        return SourceAnswer(url, "echo", family, error=exc.reason,
                            elapsed=time.monotonic() - started)
    if resp.status != 200:
        return SourceAnswer(url, "echo", family, error=f"HTTP {resp.status}", elapsed=resp.elapsed)
    address, why = parse_echo_body(resp.body, resp.headers.get("content-type"))
    return SourceAnswer(url, "echo", family, address=address, error=why, elapsed=resp.elapsed)


def query_router(router: RouterLike | None, open_router: Any, router_cfg: Any) -> tuple[SourceAnswer, bool]:
    """The router's own WAN address. Returns (answer, router_answered); an empty address with
    router_answered=True is how miniupnpd says "not connected / behind another NAT"."""
    started = time.monotonic()
    opened = None
    try:
        if router is None:
            opened = router = open_router(router_cfg)
        address = router.external_ip()
    except Exception as exc:  # NatlinkError from open_router, protocol errors: the source is just missing
        message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
        return SourceAnswer("router", "router", 4, error=message, elapsed=time.monotonic() - started), False
    finally:
        if opened is not None:
            try:
                opened.close()
            except Exception:  # closing is best effort
                log.debug("router close failed", exc_info=True)
    elapsed = time.monotonic() - started
    if not address:
        return SourceAnswer("router", "router", 4, error="the router reports no external address",
                            elapsed=elapsed), True
    try:
        address = str(ipaddress.ip_address(address))
    except ValueError:
        return SourceAnswer("router", "router", 4, error=f"the router answered {_show(address)}",
                            elapsed=elapsed), True
    return SourceAnswer("router", "router", 4, address=address, elapsed=elapsed), True


def pick_interface_address(addr_info: list[dict[str, Any]], family: int) -> str | None:
    """From `ip -j addr` addr_info entries pick a stable global address: IPv6 privacy (temporary),
    deprecated, tentative and DAD-failed addresses change or vanish, so a server must not publish them."""
    if family == 6:  # the full rule (ULA, link-local, lifetimes): natlink.ipv6addr, docs/design/ipv6.md
        from natlink.ipv6addr import from_ip_json, select

        return select(from_ip_json([{"ifname": "", "addr_info": addr_info}])).address
    wanted = "inet"
    candidates = []
    for info in addr_info:
        if info.get("family") != wanted or info.get("scope", "global") != "global":
            continue
        if any(info.get(flag) for flag in ("temporary", "deprecated", "tentative", "dadfailed")):
            continue
        local = info.get("local")
        if local:
            candidates.append(local)
    # mngtmpaddr/stable addresses come in kernel order; the first is the primary one.
    return candidates[0] if candidates else None


class NoSuchInterface(OSError):
    """The interface named in public_ip.sources does not exist (here, now)."""


def interface_addresses(name: str | None) -> list[dict[str, Any]]:
    """addr_info of one interface (or of all when name is None) via iproute2's JSON output."""
    if name:
        try:
            socket.if_nametoindex(name)
        except OSError:  # the kernel's answer, rather than reading the wording of ip's error message
            raise NoSuchInterface(f"no interface {name}") from None
    argv = ["ip", "-j", "addr", "show"] + (["dev", name] if name else [])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    if proc.returncode != 0:
        raise OSError(proc.stderr.strip() or f"ip addr show failed ({proc.returncode})")
    links = json.loads(proc.stdout or "[]")
    return [info for link in links if link.get("ifname") != "lo" for info in link.get("addr_info", [])]


def query_interface(name: str | None, family: int) -> SourceAnswer:
    label = f"interface:{name}" if name else "host"
    started = time.monotonic()
    try:
        info = interface_addresses(name)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        why = str(exc)
        return SourceAnswer(label, "interface", family, error=why, elapsed=time.monotonic() - started)
    addr = pick_interface_address(info, family)
    if addr is None:
        return SourceAnswer(label, "interface", family, error=f"no stable global IPv{family} address",
                            elapsed=time.monotonic() - started)
    return SourceAnswer(label, "interface", family, address=addr, elapsed=time.monotonic() - started)
