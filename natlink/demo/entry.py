"""Entry points of `natlink demo`: prerequisites and the user's config are checked before anything is built;
signals and logging are set up so the story can always tear its sandbox down and tell it once."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

from natlink.config import Config
from natlink.errors import NatlinkError
from natlink.output import Output

from natlink.demo import prereq
from natlink.demo.sandbox import destroy_kept, kept_sandboxes, tidy_stale
from natlink.demo.story import Story


def run_demo(out: Output, config: Callable[[], Config] | None, *, keep: bool = False,
             host: prereq.Host | None = None) -> int:
    """`natlink demo [--config FILE] [--keep]`. Prerequisites and the user's config are checked before
    anything is built, so a missing piece never leaves half a network behind."""
    prereq.require(host)
    user_cfg = config() if config is not None else None
    others = kept_sandboxes()
    if others:
        out.note(f"note: {len(others)} sandbox(es) kept from before are still up ({', '.join(o['tag'] for o in others)}); "
                 "`natlink demo --down` removes them")
    with _narrating(out.verbose), _exit_on_hangup_or_term():
        tidy_stale(out)  # told as notes (the registry's own INFO lines would say it twice)
        return Story(out, user_cfg=user_cfg, keep=keep).run()


def run_ipv6_demo(out: Output, host: prereq.Host | None = None) -> int:
    """`natlink demo --scenario cgnat-ipv6` (natlink.demo.story6)."""
    from natlink.demo.story6 import Ipv6Story

    prereq.require(host)
    with _narrating(out.verbose), _exit_on_hangup_or_term():
        tidy_stale(out)
        return Ipv6Story(out).run()


@contextlib.contextmanager
def _exit_on_hangup_or_term() -> Iterator[None]:
    """SIGTERM / SIGHUP (a closed terminal) become SystemExit, so the story's finally tears the sandbox down."""
    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread (tests): the lab's own handler still covers TERM
            previous[sig] = signal.signal(sig, leave)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _narrating(verbose: bool) -> Iterator[None]:
    """The story tells what natlink's modules do; their INFO log lines would say it twice (-v keeps them)."""
    root = logging.getLogger()
    level = root.level
    if not verbose:
        root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def run_down(out: Output, host: prereq.Host | None = None) -> int:
    """`natlink demo --down`: tear down every sandbox left by --keep."""
    h = host or prereq.this_host()
    found = [p for p in prereq.problems(h, binaries=("ip",)) if "missing Python" not in p]
    if found:
        raise NatlinkError("cannot tear down the sandbox here: " + "; ".join(found), exit_code=prereq.EXIT_PREREQ)
    kept = kept_sandboxes()
    removed = destroy_kept()
    for tag in removed:
        info = next((k for k in kept if k["tag"] == tag), {})
        out.line(f"removed sandbox {tag} (namespaces, processes{', ' + info['workdir'] if info.get('workdir') else ''})")
    if not removed:
        out.line("no sandbox left by `natlink demo --keep` is up")
    out.json({"ok": True, "removed": removed})
    return 0
