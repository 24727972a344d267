"""Value rules several sections share: entry names, DNS names, loopback hosts (host:port: natlink.hostport)."""

from __future__ import annotations

import ipaddress
import re

from natlink.config.section import Section, shown


def entry_name(s: Section, seen: set[str], default: str | None = None, *, allow_target: bool = False) -> str:
    name = s.string("name", default, required=default is None)
    assert name is not None
    # A probe may be named after its host:port target ("[2001:db8::1]:443" included).
    pattern = r"[A-Za-z0-9\[][A-Za-z0-9_.:\[\]\-]{0,62}" if allow_target else r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}"
    if not re.fullmatch(pattern, name):
        s.fail("name", name_problem(name, allow_target))
    if name in seen:
        s.fail("name", f"duplicate name {shown(name)}; every entry needs its own name")
    seen.add(name)
    return name


def name_problem(name: str, allow_target: bool) -> str:
    """Names are ASCII: they end up in router descriptions ("natlink:NAME", which many routers mangle beyond
    ASCII), state file names and metric labels."""
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "-_." or (allow_target and c in ":[]")))})
    allowed = "ASCII letters a-z A-Z, digits 0-9, '-', '_' and '.'" + (", ':' '[' ']' (host:port)" if allow_target else "")
    if not name:
        return f"must not be empty; use {allowed}"
    if len(name) > 63:
        return f"{shown(name)} is {len(name)} characters long; at most 63 ({allowed})"
    if bad:
        return f"{shown(name)} contains {', '.join(repr(c) for c in bad[:5])}; use only {allowed} (e.g. {shown(ascii_name(name))})"
    return f"{shown(name)} must start with a letter or digit; use {allowed}"


def ascii_name(name: str) -> str:
    import unicodedata

    folded = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
    text = "".join(folded.get(c, c) for c in name)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", text).strip("-") or "home"


def hostname_ok(name: str) -> bool:
    return bool(re.fullmatch(r"(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9\-_]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9\-_]{0,61}[A-Za-z0-9_])?\.?", name))


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
