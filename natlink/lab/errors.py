"""The lab's single exception type (kept apart so every lab module can raise it)."""

from __future__ import annotations


class LabError(RuntimeError):
    """A lab set-up, command or readiness step failed; the message says which and why."""
