"""Durations as users write them: "90s", "10m", "1h", "2d", "1h30m" or integer seconds."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(value: object) -> int:
    """Return seconds; raise ValueError with a message fit for a config error."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (use e.g. \"90s\", \"10m\", \"1h\", \"2d\" or seconds)")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative; a duration is 0 or more seconds")
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return int(text)
        if text and _PART.sub("", text) == "":
            return sum(int(n) * _UNITS[u] for n, u in _PART.findall(text))
    raise ValueError(f"{value!r} is not a duration (use e.g. \"90s\", \"10m\", \"1h\", \"2d\" or seconds)")


def plain_duration(seconds: float) -> str:
    """For people reading output: 1740 -> "29 min", 3900 -> "1 h 5 min", 42 -> "42 s", 259200 -> "3 days"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        h, m = divmod(seconds // 60, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(seconds // 3600, 24)
    return f"{d} day{'s' * (d != 1)}" + (f" {h} h" if h else "")


def format_duration(seconds: float) -> str:
    """Short human form: 3600 -> "1h", 5400 -> "1h30m", 42 -> "42s"."""
    seconds = int(round(seconds))
    if seconds <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out[:2])
