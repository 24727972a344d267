"""The demo's printer: one line per link with its measured time, wrapped; ASCII fallback; --json/--quiet."""

from __future__ import annotations

import io
import json

from natlink.demo.render import FAILED, OK, SKIPPED, Printer, StepResult, fmt_time
from natlink.output import Output


def printer(json_mode: bool = False, quiet: bool = False, unicode: bool = True) -> tuple[Printer, io.StringIO]:
    buf = io.StringIO()
    return Printer(Output(json_mode=json_mode, quiet=quiet, stdout=buf, stderr=io.StringIO()), unicode, 100), buf


def test_fmt_time() -> None:
    assert [fmt_time(x) for x in (None, 0.0004, 0.0664, 0.9994, 1.5, 12.345)] == ["", "0 ms", "66 ms", "999 ms",
                                                                                  "1.50 s", "12.35 s"]


def test_step_lines_carry_mark_time_title_detail() -> None:
    p, buf = printer()
    p.step(StepResult("router", "router found", OK, "UPnP IGD at http://10.0.1.1:5000/rootDesc.xml", 0.066))
    p.step(StepResult("mapping", "mapping created", FAILED, "TCP 80 → 10.0.1.201:8080: UPnP error 606", 0.024,
                      subject="http"))
    p.step(StepResult("reboot", "router reboot", SKIPPED, "no TCP mapping to repair", 0.0))
    lines = buf.getvalue().splitlines()
    assert lines[0] == "  ✓      66 ms  router found — UPnP IGD at http://10.0.1.1:5000/rootDesc.xml"
    assert lines[1] == "  ✗      24 ms  mapping created (http) — TCP 80 → 10.0.1.201:8080: UPnP error 606"
    assert lines[2].startswith("  –             router reboot — no TCP mapping")  # skipped: no time to show


def test_long_details_wrap_under_the_title() -> None:
    p, buf = printer()
    p.step(StepResult("ddns", "DDNS name published", OK, "word " * 60, 0.05))
    lines = buf.getvalue().splitlines()
    assert len(lines) > 2 and all(len(line) <= 100 for line in lines)
    assert all(line.startswith(" " * 16) for line in lines[1:])


def test_ascii_fallback() -> None:
    p, buf = printer(unicode=False)
    p.step(StepResult("mapping", "mapping created", OK, "TCP 3390 → 10.0.1.201:3389 · lease ½ h", 0.017))
    p.summary([StepResult("x", "x", OK)], 2.0)
    text = buf.getvalue()
    assert text.isascii() and "ok" in text and "TCP 3390 -> 10.0.1.201:3389 | lease ? h" in text


def test_summary_names_failed_links() -> None:
    p, buf = printer()
    p.summary([StepResult("a", "router found"), StepResult("mapping", "mapping created", FAILED, subject="http")], 3.2)
    assert buf.getvalue().strip() == "1 link(s) failed: mapping created (http) — total 3.20 s"
    p, buf = printer()
    p.summary([StepResult("a", "router found")], 1.9)
    assert buf.getvalue().strip() == "the whole chain works — total 1.90 s"
    p, buf = printer()
    p.summary([], 0.4, interrupted=True)
    assert "interrupted after 400 ms; the sandbox was torn down" in buf.getvalue()


def test_json_mode_prints_only_the_document_and_quiet_only_the_result() -> None:
    p, buf = printer(json_mode=True)
    r = StepResult("router", "router found", OK, "x", 0.0123, data={"protocol": "upnp"})
    p.step(r)
    p.summary([r], 1.0)
    p.json({"steps": [r.to_json()]})
    assert json.loads(buf.getvalue()) == {"steps": [{"key": "router", "title": "router found", "subject": None,
                                                     "status": "ok", "ok": True, "detail": "x", "elapsed": 0.0123,
                                                     "protocol": "upnp"}]}
    p, buf = printer(quiet=True)
    p.step(r)
    p.summary([r], 1.0)
    assert buf.getvalue().strip() == "the whole chain works — total 1.00 s"
