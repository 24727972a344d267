"""Human output by default, one JSON document with --json; messages go to stderr, results to stdout.

A reader that goes away (`natlink ... | head`) raises BrokenPipeError once, from the write that found it;
stdout then points at /dev/null, so clean-up code that still prints (the demo's teardown) runs quietly and
`natlink.cli.main` ends with 141 like any Unix tool killed by SIGPIPE."""

from __future__ import annotations

import json
import os
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
            self._write(self.stdout, text + "\n")

    def result(self, text: str) -> None:
        """A human result line that --quiet keeps (e.g. a final verdict)."""
        if not self.json_mode:
            self._write(self.stdout, text + "\n")

    def note(self, text: str) -> None:
        """Progress or advice for a person, on stderr so stdout stays clean for pipes."""
        if not self.quiet:
            self._write(self.stderr, text + "\n")

    def json(self, document: Any) -> None:
        if self.json_mode:
            self._write(self.stdout, json.dumps(document, indent=2, sort_keys=False, default=_default) + "\n")

    @property
    def tty(self) -> bool:
        return bool(getattr(self.stdout, "isatty", lambda: False)())

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            silence_closed_pipes(stream)
            raise


def silence_closed_pipes(broken: Any = None) -> None:
    """Point the broken stream (default stdout), and stdout/stderr when they are the same pipe, at /dev/null:
    what is still buffered, and whatever clean-up prints later, then goes nowhere instead of raising
    BrokenPipeError again (also at exit)."""
    broken_id = _file_id(sys.stdout if broken is None else broken)
    if broken_id is None:  # a test's buffer: nothing to redirect
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            if _file_id(stream) == broken_id:
                os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


def _file_id(stream: Any) -> tuple[int, int] | None:
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # a StringIO, or closed
        return None
    return st.st_dev, st.st_ino


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if hasattr(obj, "value") and hasattr(obj, "name"):  # Enum
        return obj.value
    return str(obj)
