"""Login sessions, CSRF tokens and the Host/Origin checks of the status page. All in memory, per server: a
restart logs everyone out, which is fine for a home page. The password itself is only ever compared."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass, field

from natlink.secrets import Secret

SESSION_LIFETIME = 7 * 86400.0
COOKIE = "natlink_session"
FAILURES_ALLOWED = 5  # wrong passwords per minute before logins are refused for a minute
LOCKOUT = 60.0


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def split_host(header: str) -> tuple[str, str] | None:
    """PURE: "name:port" / "[v6]:port" / "name" -> (host, port or ""); None when malformed."""
    if header.startswith("["):
        end = header.find("]")
        rest = header[end + 1:] if end > 0 else None
        if rest is None or (rest and not rest.startswith(":")):
            return None
        return header[1:end].lower(), rest[1:]
    host, _, port = header.partition(":")
    return None if ":" in port or not host else (host.lower(), port)


def host_allowed(header: str | None, bind_host: str, port: int, login_required: bool = False) -> bool:
    """PURE: the Host header may name this server. Without a login (loopback only) just loopback names pass, so a
    DNS-rebinding page (evil.example resolving to 127.0.0.1) cannot read or act. With a login any name passes
    (the LAN may know the server as "homeserver.lan"): a rebinding page never has the session cookie."""
    parts = split_host(header) if header else None
    if parts is None or (parts[1] and parts[1] != str(port)):
        return False
    if login_required:
        return True
    return is_loopback(parts[0]) if is_loopback(bind_host.strip("[]")) else parts[0] == bind_host.strip("[]").lower()


def origin_allowed(origin: str | None, host_header: str | None) -> bool:
    """PURE: a POST from a page of another origin is refused (browsers send Origin on every POST)."""
    if origin is None:
        return True  # not a browser form post (curl with the CSRF token): the token still has to match
    return origin.split("://", 1)[-1].rstrip("/") == (host_header or "")


@dataclass
class Sessions:
    password: Secret | None
    _sessions: dict[str, tuple[float, str]] = field(default_factory=dict)  # session id -> (expiry, csrf token)
    _failures: list[float] = field(default_factory=list)
    _anonymous_csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def required(self) -> bool:
        return self.password is not None

    def check_password(self, password: str, now: float | None = None) -> bool:
        """The password is right and logins are not locked; a wrong one counts towards the lock."""
        now = time.time() if now is None else now
        with self._lock:
            self._failures = [t for t in self._failures if now - t < LOCKOUT]
            if self.password is None or len(self._failures) >= FAILURES_ALLOWED:
                return False
            if not hmac.compare_digest(password.encode(), self.password.value.encode()):
                self._failures.append(now)
                return False
            return True

    def login(self, password: str, now: float | None = None) -> str | None:
        """-> a new session id, or None (wrong password, or too many wrong ones lately)."""
        now = time.time() if now is None else now
        if not self.check_password(password, now):
            return None
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions = {k: v for k, v in self._sessions.items() if v[0] > now}
            self._sessions[sid] = (now + SESSION_LIFETIME, secrets.token_urlsafe(24))
        return sid

    def locked_out(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self._lock:
            return len([t for t in self._failures if now - t < LOCKOUT]) >= FAILURES_ALLOWED

    def logout(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    def csrf_for(self, sid: str | None, bearer: str | None = None, now: float | None = None) -> str | None:
        """The CSRF token of a valid session (the anonymous one when no password is set); None: not logged in."""
        if not self.required:
            return self._anonymous_csrf
        now = time.time() if now is None else now
        if bearer is not None:  # a script with the password (Authorization: Bearer) needs no session
            return self._anonymous_csrf if self.check_password(bearer, now) else None
        with self._lock:
            entry = self._sessions.get(sid or "")
            if entry is None or entry[0] <= now:
                return None
            return entry[1]

    @staticmethod
    def csrf_ok(expected: str | None, given: str | None) -> bool:
        return bool(expected and given and hmac.compare_digest(expected.encode(), given.encode()))
