"""Walk the whole chain — LAN address, router, WAN address, mappings, local services, ISP-blocked ports, DDNS
names, reachability from outside, host limits — and name the first broken link with its fix.

--measure-nat-timeout (opt-in, needs a [[probe]] with a reflector) also measures how long the router keeps an
idle TCP connection and recommends a keepalive interval below it; it takes up to --max seconds."""

from __future__ import annotations

import argparse
import os
import sys
import time

from natlink.durations import parse_duration
from natlink.errors import ConfigError, NatlinkError, UsageError


def _duration(text: str) -> int:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1 second")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--measure-nat-timeout", action="store_true",
                        help="also measure the NAT's idle timeout for TCP through the reflector (slow: up to --max)")
    parser.add_argument("--max", metavar="SECONDS", type=_duration, default=None,
                        help="longest idle time to test, e.g. 5m (default: doctor.nat_timeout_max in the config, 10 min)")
    parser.add_argument("--no-hairpin", action="store_true", help="skip the hairpin (inside → public address) check")


def run(ctx, args: argparse.Namespace) -> int:
    from natlink.doctor.chain import analyse
    from natlink.doctor.runner import config_failed, run_checks
    from natlink.doctor.stream import LinkStream

    started = time.monotonic()
    if args.max is not None and not args.measure_nat_timeout:
        raise UsageError("--max only applies to --measure-nat-timeout", "add --measure-nat-timeout")
    try:
        cfg = ctx.config(defaults_ok=True)
    except ConfigError as exc:
        report = analyse([config_failed("; ".join(exc.problems), exc.hint)])
        _show_links(ctx, report)
        _emit(ctx, report, time.monotonic() - started, None)
        return exc.exit_code
    try:
        measured = _measure(ctx, cfg, args) if args.measure_nat_timeout else None
        shown: list = []

        def show(link: int, results: list) -> None:  # from the doctor's threads, in link order
            shown.extend(results)
            _show_links(ctx, analyse(shown), link, final=False)

        report = analyse(run_checks(cfg, nat_timeout=measured, hairpin=not args.no_hairpin,
                                    stream=LinkStream(show)))
    except KeyboardInterrupt:
        # Checks blocked in a router or network timeout must not hold up Ctrl-C (the executor would join
        # them): nothing is half-written (state writes are atomic), so leave at once.
        ctx.out.note("natlink: interrupted")
        sys.stdout.flush()
        os._exit(130)
    _emit(ctx, report, time.monotonic() - started, measured)
    return report.exit_code


def _show_links(ctx, report, link: int | None = None, *, final: bool = True) -> None:
    from natlink.doctor.render import render_link

    links = [link] if link is not None else sorted({e.result.link for e in report.entries})
    for n in links:
        for line in render_link(report, n, colour=ctx.out.colour, verbose=ctx.verbose, final=final):
            ctx.out.line(line)


def _measure(ctx, cfg, args: argparse.Namespace):
    from natlink.doctor.nat_timeout import measure
    from natlink.doctor.runner import save_nat_timeout
    from natlink.probe.targets import probe_secret
    from natlink.state import store_for

    probe = next((p for p in cfg.probes if p.via == "reflector" and p.reflector), None)
    if probe is None:
        raise UsageError("--measure-nat-timeout needs a reflector",
                         "run `natlink reflector --listen 0.0.0.0:8765` outside your network and add a [[probe]] "
                         "with reflector = \"http://HOST:8765\"")
    secret = probe_secret(probe)
    token = secret.value if secret is not None else None
    maximum = args.max or cfg.doctor.nat_timeout_max
    progress = None if ctx.out.json_mode else ctx.out.note
    result = measure(probe.reflector, token, maximum, progress=progress)
    try:
        save_nat_timeout(store_for(cfg), result)
    except NatlinkError as exc:  # a read-only state dir must not lose the measurement just shown
        ctx.out.note(f"natlink: not saved: {exc}")
    return result


def _emit(ctx, report, elapsed: float, measured) -> None:
    from natlink.doctor.render import render_summary

    doc = report.to_json() | {"elapsed": round(elapsed, 3)}
    if measured is not None:
        doc["nat_timeout"] = measured.to_json()
    ctx.out.json(doc)
    for line in render_summary(report, colour=ctx.out.colour):
        ctx.out.result(line) if line else ctx.out.line(line)  # -q keeps the verdict and its fix
    if ctx.out.verbose:
        ctx.out.line(f"(doctor took {elapsed:.2f} s)")
