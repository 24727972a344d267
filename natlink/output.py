"""Human output by default, one JSON document with --json; messages go to stderr, results to stdout."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class Output:
    json_mode: bool = False
    quiet: bool = False
    verbose: bool = False
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    def line(self, text: str = "") -> None:
        """A line of the human report (suppressed with --json and --quiet)."""
        if not self.json_mode and not self.quiet:
            print(text, file=self.stdout, flush=True)

    def result(self, text: str) -> None:
        """A human result line that --quiet keeps (e.g. a final verdict)."""
        if not self.json_mode:
            print(text, file=self.stdout, flush=True)

    def note(self, text: str) -> None:
        """Progress or advice for a person, on stderr so stdout stays clean for pipes."""
        if not self.quiet:
            print(text, file=self.stderr, flush=True)

    def json(self, document: Any) -> None:
        if self.json_mode:
            json.dump(document, self.stdout, indent=2, sort_keys=False, default=_default)
            self.stdout.write("\n")
            self.stdout.flush()

    @property
    def tty(self) -> bool:
        return bool(getattr(self.stdout, "isatty", lambda: False)())


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if hasattr(obj, "value") and hasattr(obj, "name"):  # Enum
        return obj.value
    return str(obj)
