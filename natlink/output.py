"""Human output by default, one JSON document with --json; messages go to stderr, results to stdout.

A reader that goes away (`natlink ... | head`) raises BrokenPipeError once, from the write that found it;
stdout then points at /dev/null, so clean-up code that still prints (the demo's teardown) runs quietly and
`natlink.cli.main` ends with 141 like any Unix tool killed by SIGPIPE."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, TextIO

# A number and its unit stay on one line ("29 min", "3.2 s", "144 KiB", "7 days", "UDP 3390").
_UNIT = re.compile(r"(?<=\d) (?=(?:ms|s|min|h|d|days?|hours?|minutes?|seconds?|KiB|MiB|GiB|B|%|ports?|"
                   r"connections?|mapping\(s\)|check\(s\)|[a-z]+\(s\))\b)|(?<=\b(?:TCP|UDP)) (?=\d)")
_GLUE = "\x00"
ASCII = str.maketrans({"→": "->", "—": "-", "–": "-", "✓": "ok", "✗": "x", "·": "|", "…": "...", "’": "'"})


def terminal_width(stream: Any = None) -> int:
    """Columns of the terminal ``stream`` (default stdout) is on; $COLUMNS when set; 80 when unknown (a pipe,
    a file, `tee demo.log`)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size((stream or sys.stdout).fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        return 80


def wrap(text: str, width: int, hang: int | None = None) -> list[str]:
    """``text`` (one line) as lines of at most ``width`` columns, continuation lines indented under the first
    word after the original indentation; never breaking a word, a number from its unit, or a URL."""
    if len(text) <= width or not text.strip():
        return [text]
    lead = len(text) - len(text.lstrip(" "))
    body = _UNIT.sub(_GLUE, text[lead:])
    hang = lead + _hang(body) if hang is None else hang
    lines = textwrap.wrap(body, width=max(20, width - lead), initial_indent="", subsequent_indent=" " * (hang - lead),
                          break_long_words=False, break_on_hyphens=False)
    return [(" " * lead + line).replace(_GLUE, " ") for line in lines] or [text]


def _hang(body: str) -> int:
    """Continuation indent: under the text after a leading tag like "[  ok] " or "fix: " (else 4 columns)."""
    m = re.match(r"(?:[>\s]?\[[^\]]{1,6}\] |[a-zA-Z ]{1,16}: {1,12}|[-*] )", body)
    return len(m.group(0)) if m and len(m.group(0)) <= 24 else 4


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
            self._write(self.stdout, json.dumps(document, indent=2, sort_keys=False, default=_default) + "\n",
                        fit=False)

    @property
    def tty(self) -> bool:
        return bool(getattr(self.stdout, "isatty", lambda: False)())

    @property
    def colour(self) -> bool:
        """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
        return self.tty and not os.environ.get("NO_COLOR")

    width: int | None = None  # None: the terminal's (80 when unknown)

    @staticmethod
    def _fit(stream: TextIO, text: str, width: int | None) -> str:
        """Wrapped to the width, arrows in one style, and ASCII where the stream cannot encode more."""
        width = width or terminal_width(stream)
        encoding = getattr(stream, "encoding", None)
        if encoding and encoding.lower().replace("-", "").startswith("utf"):
            text = text.replace(" -> ", " → ")  # one arrow style, whatever a module wrote
        out = "\n".join(w for line in text.rstrip("\n").split("\n") for w in wrap(line, width)) + "\n"
        try:
            out.encode(encoding or "utf-8")
        except (UnicodeEncodeError, LookupError):
            out = out.translate(ASCII).encode(encoding or "ascii", "replace").decode(encoding or "ascii", "replace")
        return out

    def _write(self, stream: TextIO, text: str, *, fit: bool = True) -> None:
        if fit:
            text = self._fit(stream, text, self.width)
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
