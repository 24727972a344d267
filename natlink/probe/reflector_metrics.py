"""The reflector's operator figures: counters kept by the event loop, rendered in Prometheus text format."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ReflectorMetrics:
    requests: Counter[str] = field(default_factory=Counter)  # by endpoint
    dialbacks: Counter[str] = field(default_factory=Counter)  # by outcome (open, refused, timeout, ...)
    refusals: Counter[str] = field(default_factory=Counter)  # by reason (budget-address, bad-token, ...)
    open_connections: int = 0
    held_connections: int = 0

    def render(self) -> str:
        lines: list[str] = []
        _family(lines, "natlink_reflector_requests_total", "counter", "HTTP requests by endpoint",
                "endpoint", self.requests)
        _family(lines, "natlink_reflector_dialbacks_total", "counter", "dial-backs by outcome",
                "outcome", self.dialbacks)
        _family(lines, "natlink_reflector_refusals_total", "counter", "refused requests and connections by reason",
                "reason", self.refusals)
        for name, value, text in (("open_connections", self.open_connections, "connections open now"),
                                  ("held_connections", self.held_connections, "/v1/hold connections open now")):
            lines += [f"# HELP natlink_reflector_{name} {text}", f"# TYPE natlink_reflector_{name} gauge",
                      f"natlink_reflector_{name} {value}"]
        return "\n".join(lines) + "\n"


def _family(lines: list[str], name: str, kind: str, text: str, label: str, counts: Counter[str]) -> None:
    lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    lines += [f'{name}{{{label}="{key}"}} {counts[key]}' for key in sorted(counts)]
