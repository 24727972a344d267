"""How the story is shown: one line per link as it happens, with the time it took; a summary; --json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from natlink.output import Output, terminal_width, wrap

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
MARKS = {OK: ("✓", "ok"), FAILED: ("✗", "FAIL"), SKIPPED: ("–", "skip")}
ASCII = str.maketrans({"→": "->", "—": "-", "–": "-", "✓": "ok", "✗": "x", "·": "|"})


@dataclass
class StepResult:
    key: str  # stable id: sandbox, router, wan, mapping, ddns, reach, service, ip-change, reboot, teardown, keep
    title: str  # what a person reads: "router found"
    status: str = OK
    detail: str = ""
    elapsed: float | None = None  # seconds, measured
    subject: str | None = None  # the mapping / DDNS entry / probe the step is about
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != FAILED

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "subject": self.subject, "status": self.status,
                "ok": self.ok, "detail": self.detail,
                "elapsed": None if self.elapsed is None else round(self.elapsed, 4), **self.data}


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


class Printer:
    """Writes through natlink's Output, so --json and --quiet behave like everywhere else."""

    def __init__(self, out: Output, unicode: bool | None = None, width: int | None = None) -> None:
        self.out = out
        self.width = width or terminal_width(out.stdout)
        if out.width is None:
            out.width = self.width  # the story's own wrapping (indents under the title) is the one shown
        if unicode is None:
            encoding = (getattr(out.stdout, "encoding", None) or "").lower().replace("-", "")
            unicode = encoding in ("utf8", "utf16", "utf32")
        self.unicode = unicode

    def text(self, s: str) -> str:
        return s if self.unicode else s.translate(ASCII).encode("ascii", "replace").decode("ascii")

    def line(self, s: str = "") -> None:
        self.out.line(self.text(s))

    def wrapped(self, first: str, rest: str, indent: int) -> None:
        for line in wrap(first + rest, self.width, hang=indent):  # numbers stay with their units
            self.line(line)

    def step(self, r: StepResult) -> None:
        mark = MARKS[r.status][0 if self.unicode else 1]
        title = f"{r.title} ({r.subject})" if r.subject and r.key not in ("sandbox",) else r.title
        when = "" if r.status == SKIPPED else fmt_time(r.elapsed)
        self.wrapped(f"  {mark:<4}{when:>8}  {title}", f" — {r.detail}" if r.detail else "", 16)

    def note(self, s: str) -> None:
        self.wrapped("                note: ", s, 22)

    def summary(self, results: list[StepResult], total: float, interrupted: bool = False) -> None:
        failed = [r for r in results if r.status == FAILED]
        if interrupted:
            text = f"interrupted after {fmt_time(total)}; the sandbox was torn down"
        elif failed:
            names = ", ".join(f"{r.title} ({r.subject})" if r.subject else r.title for r in failed)
            text = f"{len(failed)} link(s) failed: {names} — total {fmt_time(total)}"
        else:
            text = f"the whole chain works — total {fmt_time(total)}"
        self.line()
        self.out.result(self.text(text))

    def next_steps(self) -> None:
        """What to do with the user's own router after watching the sandbox."""
        self.line()
        self.line("Next, with your own router (on the machine the mappings should point to):")
        for n, (cmd, what) in enumerate((
                ("natlink mappings", "your router, its external address and its table (no config needed)"),
                ("natlink init", "writes a config for your network; add a [[mapping]] to it"),
                ("natlink doctor", "walks the whole chain and names the first broken link with its fix")), 1):
            self.wrapped(f"  {n}. {cmd:<17} ", what, 23)

    def kept(self, info: dict[str, Any]) -> None:
        """How to look around a sandbox left by --keep, and how to remove it."""
        self.line()
        self.line(f"The sandbox is still up (lab {info['tag']}, files in {info['workdir']}). Enter a host:")
        for h in info["hosts"].values():
            self.line(f"  {h['enter']:<45}  # {h['address']:<10} {h['what']}")
        self.line("Try:")
        for cmd in info["try"]:
            self.line(f"  {cmd}")
        self.line(f"natlink's config there: {info['config']}; service log: {info['logs'].get('service', '-')}")
        self.line(f"Tear it down with: {info['down']}")

    def json(self, document: dict[str, Any]) -> None:
        self.out.json(document)
