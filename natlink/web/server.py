"""The status page's HTTP server (stdlib ThreadingHTTPServer, a daemon thread of `natlink run`).

GET /            the page (static HTML: works without JavaScript)
GET /events      server-sent events: the page's <main> part whenever a fact changes (and every 10 s)
GET /api/status  the page's facts as JSON
POST /action/check, /action/ddns   "check now" and "update now" (CSRF token; nothing can delete)
GET|POST /login, POST /logout      when service.web_password is set (required off loopback)
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from natlink.config import Config
from natlink.errors import NatlinkError
from natlink.hostport import join, parse_target
from natlink.secrets import SecretRef, SecretUnavailable, read_secret
from natlink.service.history import load as load_history
from natlink.service.statusview import gather
from natlink.state import StateStore
from natlink.web import render
from natlink.web.auth import COOKIE, SESSION_LIFETIME, Sessions, host_allowed, origin_allowed
from natlink.web.view import View, build, unreadable

log = logging.getLogger(__name__)

POLL = 0.5  # seconds between looks at the state files while a page is open (a few small JSON reads)
RESEND = 10.0  # an update at least this often, so the page can tell a live link from a dead one
MAX_BODY = 16 * 1024
ACTION_COOLDOWN = 10.0  # seconds between two runs of the same action (per DDNS entry for "update now")
STATIC = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


@dataclass
class Actions:
    """What the page may ask the service to do; nothing here can delete anything."""

    check_now: Callable[[], str]  # -> what was started, for the person who clicked
    update_now: Callable[[str], str]  # entry name -> what was started; KeyError for an unknown entry


def collect(cfg: Config, store: StateStore, now: float | None = None) -> View:
    """The page's facts from the state store; a state that cannot be read is shown as that, never as old facts."""
    now = time.time() if now is None else now
    try:
        doc = gather(cfg, store, now)
        return build(doc, store.load("publicip"), load_history(store, now), now, store.load("pinholes"))
    except NatlinkError as exc:
        return unreadable(exc.message, now)
    except Exception as exc:  # a page bug must not take the service down; the page says what failed
        log.warning("status page: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        return unreadable(f"internal error reading the state ({type(exc).__name__})", now)


def fingerprint(view: View) -> str:
    """What changes the page: every fact but the render time (ages tick in the browser)."""
    doc = view.to_json()
    doc.pop("generated")
    return json.dumps(doc, sort_keys=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall for seconds without DNS.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class _Server6(_Server):
    address_family = socket.AF_INET6


def _listen(listen: str) -> tuple[str, int]:
    """service.web as (host, port); port 0 (any free port) is for tests."""
    target = parse_target(listen, any_port=True)
    if target is None:
        raise NatlinkError(f"service.web {listen!r} is not ADDR:PORT", "e.g. \"127.0.0.1:9878\"", exit_code=2)
    return target


def read_password(ref: SecretRef | None) -> Any:
    if ref is None:
        return None
    try:
        return read_secret(ref)
    except SecretUnavailable as exc:
        raise NatlinkError(f"service.web_password: {exc.message}", exc.hint) from None


class WebServer:
    def __init__(self, listen: str, password_ref: SecretRef | None, config: Callable[[], Config],
                 store: StateStore, actions: Actions) -> None:
        self.address = _listen(listen)
        self.sessions = Sessions(read_password(password_ref))
        self.config, self.store, self.actions = config, store, actions
        self.stopping = threading.Event()
        self._last_action: dict[str, float] = {}  # action -> when it last ran (monotonic)
        self._actions_lock = threading.Lock()
        self._server: _Server | None = None

    def start(self) -> "WebServer":
        host, port = self.address
        try:
            self._server = (_Server6 if ":" in host else _Server)((host, port), _handler(self))
        except OSError as exc:
            raise NatlinkError(f"cannot serve the status page on {host}:{port}: {exc.strerror or exc}",
                               "pick a free port in service.web or remove it") from None
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                         name="natlink-web", daemon=True).start()
        log.info("status page on http://%s/%s", join(host, self.port),
                 " (login required)" if self.sessions.required else "")
        return self

    @property
    def port(self) -> int:
        return self._server.server_port if self._server else self.address[1]

    def stop(self) -> None:
        self.stopping.set()  # open event streams end within POLL
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reload_password(self, ref: SecretRef | None) -> None:
        """After a reload: a new password value ends every session (the old one may have leaked)."""
        password = read_password(ref)
        if password != self.sessions.password:
            self.sessions = Sessions(password)
            log.info("status page: new password, every session logged out")

    def cooldown(self, action: str, now: float | None = None) -> int:
        """Seconds before this action may run again (0: now, and it is booked): a button pressed twenty times
        must not become twenty forced provider requests."""
        now = time.monotonic() if now is None else now
        with self._actions_lock:
            left = ACTION_COOLDOWN - (now - self._last_action.get(action, -ACTION_COOLDOWN))
            if left > 0:
                return int(left) + 1
            self._last_action[action] = now
            return 0

    def view(self) -> View:
        return collect(self.config(), self.store)


def _handler(web: WebServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "natlink"
        sys_version = ""

        # ---------------------------------------------------------------- plumbing
        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("web %s: " + fmt, self.client_address[0], *args)

        def _send(self, status: int, body: bytes | str, ctype: str = "text/html; charset=utf-8",
                  headers: dict[str, str] | None = None) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            for key, value in {**SECURITY_HEADERS, "Content-Type": ctype, "Content-Length": str(len(data)),
                               **(headers or {})}.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _json(self, status: int, doc: Any) -> None:
            self._send(status, json.dumps(doc), "application/json")

        def _redirect(self, where: str, headers: dict[str, str] | None = None) -> None:
            self._send(303, "", "text/plain", {"Location": where, **(headers or {})})

        def _sid(self) -> str | None:
            cookie = SimpleCookie()
            try:
                cookie.load(self.headers.get("Cookie") or "")
            except Exception:
                return None
            morsel = cookie.get(COOKIE)
            return morsel.value if morsel else None

        def _bearer(self) -> str | None:
            auth = self.headers.get("Authorization") or ""
            return auth[7:].strip() if auth.lower().startswith("bearer ") else None

        def _csrf(self) -> str | None:
            return web.sessions.csrf_for(self._sid(), self._bearer())

        def _checked(self) -> bool:
            """Host header check on every request (DNS rebinding); False once it answered."""
            if host_allowed(self.headers.get("Host"), web.address[0], web.port, web.sessions.required):
                return True
            self._send(421, "This page answers only under its own address.\n", "text/plain; charset=utf-8")
            return False

        def _form(self) -> dict[str, str]:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self.close_connection = True  # the body is not read: the connection cannot be reused
                return {}
            raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def _wants_json(self) -> bool:
            return "application/json" in (self.headers.get("Accept") or "")

        # ---------------------------------------------------------------- GET
        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            if not self._checked():
                return
            path = urlsplit(self.path).path
            if path.startswith("/static/") and path[8:] in STATIC:
                name = path[8:]
                body = resources.files("natlink.web").joinpath("static", name).read_bytes()
                self._send(200, body, STATIC[name], {"Cache-Control": "no-cache"})
                return
            if path == "/login":
                self._send(200, render.login_page()) if web.sessions.required else self._redirect("/")
                return
            csrf = self._csrf()
            if csrf is None:
                if path == "/":
                    self._redirect("/login")
                else:
                    self._json(401, {"error": "log in first (POST /login) or send Authorization: Bearer"})
                return
            if path == "/":
                self._send(200, render.page(web.view(), csrf, login=web.sessions.required))
            elif path == "/api/status":
                self._json(200, web.view().to_json())
            elif path == "/events":
                self._events(csrf)
            else:
                self._send(404, "not found\n", "text/plain; charset=utf-8")

        do_HEAD = do_GET

        def _events(self, csrf: str) -> None:
            self.send_response(200)
            for key, value in {**SECURITY_HEADERS, "Content-Type": "text/event-stream; charset=utf-8",
                               "X-Accel-Buffering": "no"}.items():
                self.send_header(key, value)
            self.end_headers()
            last, sent = "", 0.0
            try:
                self.wfile.write(b"retry: 1000\n\n")
                while not web.stopping.is_set() and self._csrf() is not None:
                    view = web.view()
                    key = fingerprint(view)
                    if key != last or time.monotonic() - sent >= RESEND:
                        data = "".join(f"data: {line}\n" for line in render.main_part(view, csrf).splitlines())
                        self.wfile.write(f"event: page\nid: {view.generated:.3f}\n{data}\n".encode())
                        self.wfile.flush()
                        last, sent = key, time.monotonic()
                    web.stopping.wait(POLL)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

        # ---------------------------------------------------------------- POST
        def do_POST(self) -> None:  # noqa: N802
            if not self._checked():
                return
            path = urlsplit(self.path).path
            if not origin_allowed(self.headers.get("Origin"), self.headers.get("Host")):
                log.warning("status page: refused a POST from origin %r (the page is %r)", self.headers.get("Origin"),
                            self.headers.get("Host"))
                self._send(403, "cross-site request refused\n", "text/plain; charset=utf-8")
                return
            form = self._form()
            if path == "/login":
                self._login(form)
                return
            csrf = self._csrf()
            if csrf is None:
                self._json(401, {"ok": False, "message": "log in first"})
                return
            if self._bearer() is None and not Sessions.csrf_ok(csrf, form.get("csrf")
                                                               or self.headers.get("X-CSRF-Token")):
                self._json(403, {"ok": False, "message": "the page is out of date (CSRF token); reload it"})
                return
            if path == "/logout":
                web.sessions.logout(self._sid())
                self._redirect("/login", {"Set-Cookie": f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"})
                return
            if path not in ("/action/check", "/action/ddns"):
                self._send(404, "not found\n", "text/plain; charset=utf-8")
                return
            entry = form.get("entry", "")
            wait = web.cooldown(path + "?" + entry)
            if wait:
                self._json(429, {"ok": False, "message": f"asked a moment ago; again in {wait} s (a provider "
                                                         "that is asked too often may block the account)"})
                return
            try:
                message = web.actions.check_now() if path == "/action/check" else web.actions.update_now(entry)
            except KeyError:
                self._json(404, {"ok": False, "message": f"no DDNS entry {form.get('entry', '')!r}"})
                return
            log.info("status page: %s", message)
            if self._wants_json():
                self._json(202, {"ok": True, "message": message, "at": time.time()})
            else:
                self._redirect("/")

        def _login(self, form: dict[str, str]) -> None:
            if not web.sessions.required:
                self._redirect("/")
                return
            sid = web.sessions.login(form.get("password", ""))
            if sid is None:
                locked = web.sessions.locked_out()
                log.warning("status page: %s login from %s", "refused (too many wrong passwords)" if locked
                            else "wrong password in a", self.client_address[0])
                self._send(429 if locked else 401, render.login_page(
                    "Too many wrong passwords: wait a minute." if locked else "Wrong password."))
                return
            self._redirect("/", {"Set-Cookie": f"{COOKIE}={sid}; Max-Age={int(SESSION_LIFETIME)}; Path=/; "
                                               "HttpOnly; SameSite=Strict"})

    return Handler
