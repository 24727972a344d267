"""Where natlink keeps its pinholes in the state, readable without building them: an IPv4-only `natlink map`
asks only whether there are any (none: nothing to renew or delete), and then never imports the pinhole code."""

from __future__ import annotations

from typing import Any

STATE_KEY = "pinholes"


def owned_records(store: Any) -> dict[str, dict[str, Any]]:
    """The state's pinhole records by name, as stored (natlink.portmap.pinhole_plan.Hole.from_json reads one)."""
    data = store.load(STATE_KEY, {}) or {}
    return data.get("pinholes", {})
