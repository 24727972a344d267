"""PURE: the status page as HTML, from a view.View. The one renderer: the first answer and every live update
(server-sent events carry the <main> part) come from here, so the page without JavaScript shows the same.
Every value is escaped; ages are <time data-ts> elements the script keeps ticking."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable

from natlink.durations import format_duration
from natlink.web.view import Card, Fact, View

LEVEL_WORDS = {"good": "ok", "bad": "problem", "warn": "unverified", "info": "info"}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def when(ts: float, now: float) -> str:
    """ "12s ago" / "in 5m" / "just now": the words the script also writes (page.js, ageText)."""
    delta = now - ts
    if abs(delta) < 1:
        return "just now"
    return f"{format_duration(delta)} ago" if delta > 0 else f"in {format_duration(-delta)}"


def _time(ts: float, now: float) -> str:
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    return f'<time datetime="{iso}" data-ts="{ts:.3f}" title="{iso}">{when(ts, now)}</time>'


def _fact(f: Fact, now: float) -> str:
    parts = [f'<span class="value">{_e(f.value)}</span>'] if f.value else []
    if f.at is not None:
        parts.append(_time(f.at, now))
    if not f.current:
        parts.append(f'<span class="unverified"><strong>unverified</strong>{" — " + _e(f.why) if f.why else ""}'
                     "</span>")
    elif f.why:
        parts.append(f'<span class="note">{_e(f.why)}</span>')
    level = f.level if f.current or f.level == "bad" else "warn"
    word = f'<span class="level">{LEVEL_WORDS[level]}</span> ' if level in ("good", "bad") else ""
    return f'<div class="fact {level}"><dt>{_e(f.label)}</dt><dd>{word}{" ".join(parts)}</dd></div>'


def _card(card: Card, now: float, csrf: str, ident: str) -> str:
    action = ""
    if card.action is not None:
        action = (f'<form class="action" method="post" action="/action/ddns"><input type="hidden" name="csrf" '
                  f'value="{_e(csrf)}"><input type="hidden" name="entry" value="{_e(card.action)}">'
                  f'<button type="submit">Update {_e(card.action)} now</button></form>')
    facts = "".join(_fact(f, now) for f in card.facts)
    return (f'<article class="card {card.level}" aria-labelledby="{ident}" data-card="{_e(card.title)}">'
            f'<h3 id="{ident}">{_e(card.title)} <span class="badge">{LEVEL_WORDS[card.level]}</span></h3>'
            f"<dl>{facts}</dl>{action}</article>")


def _section(ident: str, title: str, cards: Iterable[Card], now: float, csrf: str, empty: str) -> str:
    body = "".join(_card(c, now, csrf, f"{ident}-{i}") for i, c in enumerate(cards)) or f'<p class="empty">{_e(empty)}</p>'
    return (f'<section id="{ident}" aria-labelledby="{ident}-h"><h2 id="{ident}-h">{_e(title)}</h2>'
            f'<div class="cards">{body}</div></section>')


def _history(view: View, now: float) -> str:
    if not view.history:
        rows = '<p class="empty">Nothing recorded yet (the last 30 days are kept).</p>'
    else:
        lines = "".join(f'<tr><td>{_time(float(h["at"]), now)}</td><td>{_e(h.get("event", ""))}</td>'
                        f'<td>{_e(h.get("subject", ""))}</td><td>{_e(h.get("message", ""))}</td></tr>'
                        for h in view.history)
        more = (f'<p class="note">{view.history_total - len(view.history)} older entries kept in the state.</p>'
                if view.history_total > len(view.history) else "")
        rows = (f'<div class="scroll"><table><caption>Newest first; the last 30 days are kept.</caption><thead><tr>'
                f'<th scope="col">When</th><th scope="col">Event</th><th scope="col">About</th>'
                f'<th scope="col">What happened</th></tr></thead><tbody>{lines}</tbody></table></div>{more}')
    return f'<section id="history" aria-labelledby="history-h"><h2 id="history-h">History</h2>{rows}</section>'


def main_part(view: View, csrf: str) -> str:
    """The live part: what the script swaps in on every update."""
    now = view.generated
    if view.error:
        return (f'<div class="banner bad" role="alert"><strong>The page cannot read natlink\'s state:</strong> '
                f'{_e(view.error)}. Nothing is shown as current.</div>')
    summary = ("All links work" if view.ok else "Problems: " + "; ".join(view.problems))
    out = [f'<div class="banner {"good" if view.ok else "bad"}" id="overall"><strong>{_e(summary)}</strong> '
           f'<span class="note">as of {_time(now, now)}</span></div>',
           _section("addresses", "Public address", view.addresses, now, csrf, ""),
           _section("mappings", "Port mappings", view.mappings, now, csrf, "No mapping is configured."),
           _section("ddns", "DDNS names", view.ddns, now, csrf, "No DDNS entry is configured."),
           _section("probes", "Reachability probes", view.probes, now, csrf, ""),
           _section("service", "Service health", [view.service], now, csrf, ""),
           _history(view, now)]
    return "".join(out)


def page(view: View, csrf: str, *, login: bool) -> str:
    """The whole document (the first answer of GET /)."""
    logout = ('<form method="post" action="/logout"><input type="hidden" name="csrf" '
              f'value="{_e(csrf)}"><button type="submit" class="secondary">Log out</button></form>') if login else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>natlink status</title><link rel="stylesheet" href="/static/page.css"><script src="/static/page.js" defer></script>
</head><body data-now="{view.generated:.3f}">
<header><h1>natlink <span>home server status</span></h1>
<p id="conn" role="status" aria-live="polite">Shown as of {_time(view.generated, view.generated)}; \
<noscript>reload the page to update it.</noscript></p>
<div class="actions"><form method="post" action="/action/check"><input type="hidden" name="csrf" value="{_e(csrf)}">\
<button type="submit">Check now</button></form>{logout}</div>
<p id="action-result" role="status" aria-live="polite"></p></header>
<main id="live">{main_part(view, csrf)}</main>
<footer>natlink shows only what this service saw itself; anything else is marked unverified, with why.</footer>
</body></html>
"""


def login_page(problem: str | None = None) -> str:
    error = f'<p class="banner bad" role="alert">{_e(problem)}</p>' if problem else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>natlink: log in</title><link rel="stylesheet" href="/static/page.css"></head><body>
<header><h1>natlink <span>home server status</span></h1></header>
<main class="login">{error}<form method="post" action="/login">
<label for="password">Password (service.web_password)</label>
<input id="password" name="password" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button></form></main></body></html>
"""
