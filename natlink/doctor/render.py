"""The human checklist: one line per check under its link, consequences pointing at their cause, and the first
broken link with its fix at the end. Colour only when stdout is a terminal."""

from __future__ import annotations

from dataclasses import dataclass

from natlink.doctor.chain import ChainEntry, ChainReport
from natlink.doctor.family_line import family_line
from natlink.doctor.model import LINKS, Status

_MARK = {Status.OK: "ok", Status.WARN: "warn", Status.FAIL: "FAIL", Status.SKIPPED: "skip"}
_COLOUR = {Status.OK: "32", Status.WARN: "33", Status.FAIL: "31", Status.SKIPPED: "2"}


@dataclass(frozen=True)
class Style:
    colour: bool = False

    def paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text


def _status_tag(entry: ChainEntry, style: Style) -> str:
    status = entry.result.status
    tag = f"[{_MARK[status]:>4}]"
    return style.paint(tag, _COLOUR[status])


def render(report: ChainReport, *, colour: bool = False, verbose: bool = False) -> list[str]:
    """The whole checklist and its summary (what a finished run shows)."""
    links = sorted({e.result.link for e in report.entries})
    lines = [line for link in links for line in render_link(report, link, colour=colour, verbose=verbose)]
    return lines + render_summary(report, colour=colour)


def render_link(report: ChainReport, link: int, *, colour: bool = False, verbose: bool = False,
                final: bool = True) -> list[str]:
    """One link's title and checks. ``final`` False (streaming, later links unknown): no "first broken"
    marker yet, so every problem's fix is shown under it."""
    style = Style(colour)
    entries = [e for e in report.entries if e.result.link == link]
    if not entries:
        return []
    title = f"{link}. {LINKS[link].title}"
    lines = [style.paint(title, "1") if colour else title]
    broken = report.broken_entry if final else None
    for entry in entries:
        r = entry.result
        text = r.finding
        cause = report.cause_of(entry)
        if cause is not None:
            text += f" — cannot work because of link {cause.result.link} ({LINKS[cause.result.link].title})"
        marker = ">" if entry is broken else " "
        if entry is broken:
            text = style.paint(text, "1;31" if r.status is Status.FAIL else "1;33")
        timing = f" ({r.elapsed * 1000:.0f} ms)" if verbose and r.elapsed else ""
        lines.append(f" {marker}{_status_tag(entry, style)} {text}{timing}")
        show_fix = r.fix and r.status is not Status.OK and cause is None and entry is not broken
        if show_fix and (r.status is not Status.SKIPPED or verbose):
            lines.append(f"         fix: {r.fix}")
    return lines


def render_summary(report: ChainReport, *, colour: bool = False) -> list[str]:
    """The verdict: the first broken link and its fix, or that nothing is broken (what -q keeps)."""
    style = Style(colour)
    lines = [""]
    counts = report.counts()
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    broken = report.broken_entry
    if broken is not None:
        r = broken.result
        head = f"First broken link: {r.link}. {LINKS[r.link].title}: {r.finding}"
        lines.append(style.paint(head, "1;31" if r.status is Status.FAIL else "1;33"))
        if r.fix:
            lines.append(style.paint(f"Fix: {r.fix}", "1"))
        consequences = [e for e in report.entries if report.cause_of(e) is broken]
        if consequences:
            lines.append(f"Then re-run `natlink doctor`: {len(consequences)} later check(s) failed only because of this.")
    elif report.failed:  # cannot happen with the chain's rules, but never claim health when something failed
        lines.append(style.paint("Some checks failed.", "1;31"))
    else:
        lines.append(style.paint("Nothing is broken.", "1;32") + (" See the warnings above." if counts["warn"] else ""))
    per_family = family_line(e.result for e in report.entries)
    if per_family:
        lines.append(per_family)
    lines.append(f"({summary})")
    return lines
