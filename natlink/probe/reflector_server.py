"""The reflector's event-driven server (asyncio, one thread): slow clients cost memory, not threads.

A connection lives in three phases. Accepted: only a socket, a reader callback and a deadline timer (no task)
until its first byte. Reading: a task reads the PROXY header (trusted proxies only), the TLS handshake, the
request head and body, all under ONE deadline (request_timeout from accept — dripping bytes does not
extend it). Answering: dial-backs (each bounded by the dial timeout) or the /v1/hold echo (its lifetime).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import ipaddress
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from natlink.probe import proxy_protocol, reflector_dial
from natlink.probe.dial import UDP_PAYLOAD, DialOutcome
from natlink.probe.reflector_io import (
    LogEntry,
    echo_lines,
    linger,
    listen,
    read_head,
    recv_exactly,
    response,
    write,
)
from natlink.probe.reflector_limits import Limits, Refusal
from natlink.probe.reflector_metrics import ReflectorMetrics
from natlink.probe.reflector_request import (
    HEAD_MAX,
    HttpHead,
    PortSpec,
    ProbeLimits,
    RequestError,
    client_address,
    hold_lifetime,
    parse_probe_request,
)

if TYPE_CHECKING:
    from natlink.probe.reflector import ReflectorSettings

log = logging.getLogger("natlink.reflector")

API_VERSION = 1
HOLD_UPGRADE = "natlink-echo"
ACCEPTS_PER_WAKE = 64


@dataclass(eq=False)  # in a set by identity
class _Conn:
    sock: socket.socket
    peer: str  # the TCP peer (a trusted proxy, or the client itself)
    deadline: float  # loop time by which the whole request must have arrived
    metrics_only: bool = False
    client: str = ""  # the requester: the peer, or the PROXY header's source; "" until counted in the limits
    timer: asyncio.TimerHandle | None = None
    refusal: Refusal | None = None  # over a limit, found before the answer can be written (behind a proxy)


class ReflectorServer:
    """Listening sockets are bound in __init__ (errors show before anything runs); serve() runs the loop part."""

    def __init__(self, settings: ReflectorSettings) -> None:
        self.settings = settings
        self.limits = Limits(per_address=settings.connections_per_address, total=settings.max_connections,
                             holds_per_address=settings.hold_per_client, holds_total=settings.hold_total,
                             rate=settings.rate, token_rate=settings.token_rate)
        self.metrics = ReflectorMetrics()
        self.probe_limits = ProbeLimits(settings.max_ports, settings.max_timeout, settings.max_read)
        self.trusted = tuple(ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies)
        self.tokens = tuple(t.encode() for t in (settings.token.value.split() if settings.token else ()))
        self.tls: ssl.SSLContext | None = None
        if settings.tls_cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(settings.tls_cert, settings.tls_key or None)
        self.sock = listen(settings.host, settings.port)
        self.metrics_sock = listen(*settings.metrics) if settings.metrics else None
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: set[_Conn] = set()  # accepted, nothing received yet (no task)
        self._dial_slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    async def serve(self, stop: asyncio.Event) -> None:
        """Accept and answer until `stop` is set; then close everything this server opened."""
        loop = self._loop = asyncio.get_running_loop()
        self._dial_slots = asyncio.Semaphore(self.settings.max_dials)
        listeners = [s for s in (self.sock, self.metrics_sock) if s is not None]
        for s in listeners:
            s.setblocking(False)
            loop.add_reader(s.fileno(), self._accept, s)
        try:
            await stop.wait()
        finally:
            for s in listeners:
                loop.remove_reader(s.fileno())
                s.close()
            for conn in list(self._waiting):
                loop.remove_reader(conn.sock.fileno())
                conn.sock.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def close(self) -> None:
        """Close the listening sockets when serve() never ran (a start-up error)."""
        for s in (self.sock, self.metrics_sock):
            if s is not None:
                s.close()

    # ---- phase 1: accepted, no task yet

    def _accept(self, listener: socket.socket) -> None:
        assert self._loop is not None
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: pause accepting (the backlog keeps clients waiting)
                log.warning("accept failed: %s; pausing accepts for 0.1 s", exc.strerror or exc)
                self.metrics.refusals["accept-failed"] += 1
                self._loop.remove_reader(listener.fileno())  # else the readable listener spins the loop
                self._loop.call_later(0.1, self._loop.add_reader, listener.fileno(), self._accept, listener)
                return
            sock.setblocking(False)
            conn = _Conn(sock, client_address(addr[0]), self._loop.time() + self.settings.request_timeout,
                         metrics_only=listener is self.metrics_sock)
            if not conn.metrics_only and not self._from_proxy(conn):
                conn.client = conn.peer
                refusal = self.limits.connect(conn.peer)
                if refusal is not None:
                    self._refuse_now(conn, refusal)
                    continue
            self.metrics.open_connections += 1
            self._waiting.add(conn)
            self._loop.add_reader(sock.fileno(), self._readable, conn)
            conn.timer = self._loop.call_at(conn.deadline, self._expire, conn)

    def _from_proxy(self, conn: _Conn) -> bool:
        return bool(self.trusted) and proxy_protocol.trusted(conn.peer, self.trusted)

    def _refuse_now(self, conn: _Conn, refusal: Refusal) -> None:
        self.metrics.refusals[refusal.reason] += 1
        log.info("client=%s status=%d reason=%s", conn.peer, refusal.status, refusal.reason)
        with contextlib.suppress(OSError):  # plain text never blocks here: a fresh socket's buffer is empty
            if self.tls is None:
                conn.sock.send(response(refusal.status, {"error": refusal.message, "hint": "retry later"},
                                         _retry_after(refusal)))
        conn.sock.close()

    def _readable(self, conn: _Conn) -> None:
        assert self._loop is not None
        self._loop.remove_reader(conn.sock.fileno())
        self._waiting.discard(conn)
        if conn.timer is not None:
            conn.timer.cancel()
        task = self._loop.create_task(self._serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _expire(self, conn: _Conn) -> None:
        assert self._loop is not None
        self._loop.remove_reader(conn.sock.fileno())
        self._waiting.discard(conn)
        self.metrics.refusals["deadline"] += 1
        log.debug("client=%s sent nothing within %.0f s: closed", conn.peer, self.settings.request_timeout)
        self._closed(conn)
        conn.sock.close()

    def _closed(self, conn: _Conn) -> None:
        self.metrics.open_connections -= 1
        if conn.client and not conn.metrics_only:
            self.limits.disconnect(conn.client)

    # ---- phase 2 and 3: one task per connection that sent something

    async def _serve(self, conn: _Conn) -> None:
        started = time.monotonic()
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        entry = LogEntry(conn.peer)
        try:
            try:
                async with asyncio.timeout_at(conn.deadline):
                    if self._from_proxy(conn) and not conn.metrics_only:
                        await self._proxy_header(conn, entry)
                    reader, writer = await self._streams(conn)
                    if conn.refusal is not None:
                        raise _refused(conn.refusal, "retry later")
                    head = await read_head(reader)
                    entry.method, entry.path = head.method, head.path
                    body = await self._read_body(reader, head)
            except TimeoutError:
                raise RequestError(408, f"the request did not arrive within {self.settings.request_timeout:g} s",
                                   "send the whole request at once", reason="deadline") from None
            await self._route(conn, head, body, reader, writer, entry)
        except RequestError as exc:
            entry.status, entry.reason = exc.status, exc.reason
            self.metrics.refusals[exc.reason] += 1
            if reader is not None and writer is not None:
                with contextlib.suppress(OSError, TimeoutError):
                    await write(writer, response(exc.status, {"error": exc.message, "hint": exc.hint},
                                                   exc.headers))
                    await linger(reader, writer)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            entry.status, entry.reason = 0, f"connection: {getattr(exc, 'strerror', None) or type(exc).__name__}"
        finally:
            if writer is not None:
                writer.close()
            else:
                conn.sock.close()
            self._closed(conn)
            if entry.method or entry.status:  # a request, possibly malformed (not: a silent connection)
                log.info(entry.line(time.monotonic() - started))

    async def _proxy_header(self, conn: _Conn, entry: LogEntry) -> None:
        """Read exactly the PROXY v2 header from a trusted proxy; the requester is its source address."""
        assert self._loop is not None
        try:
            prefix = await recv_exactly(self._loop, conn.sock, proxy_protocol.PREFIX_LEN)
            header = proxy_protocol.parse(prefix, await recv_exactly(self._loop, conn.sock,
                                                                      proxy_protocol.body_length(prefix)))
        except proxy_protocol.ProxyHeaderError as exc:
            raise _closing(f"bad PROXY header from trusted proxy {conn.peer}: {exc}") from None
        client = header.source or conn.peer  # LOCAL: the proxy's own health check
        entry.client, entry.via = client, conn.peer
        conn.refusal = self.limits.connect(client)
        if conn.refusal is None:
            conn.client = client

    async def _streams(self, conn: _Conn) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        assert self._loop is not None
        reader = asyncio.StreamReader(limit=HEAD_MAX, loop=self._loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=self._loop)
        tls = None if conn.metrics_only else self.tls
        transport, _ = await self._loop.connect_accepted_socket(
            lambda: protocol, conn.sock, ssl=tls,
            ssl_handshake_timeout=max(0.1, conn.deadline - self._loop.time()) if tls else None)
        return reader, asyncio.StreamWriter(transport, protocol, reader, self._loop)

    async def _read_body(self, reader: asyncio.StreamReader, head: HttpHead) -> bytes:
        if head.method != "POST":
            return b""
        return await reader.readexactly(head.body_length(self.settings.max_body))

    async def _route(self, conn: _Conn, head: HttpHead, body: bytes, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, entry: LogEntry) -> None:
        path = head.path
        self.metrics.requests[path if path in _ENDPOINTS else "other"] += 1
        if conn.metrics_only:
            if path != "/metrics":
                raise RequestError(404, f"no such endpoint {path}", "use GET /metrics")
            await self._send(writer, entry, 200, self.metrics.render().encode(), "text/plain; version=0.0.4")
            return
        if path in ("/v1/health", "/"):
            await self._send_json(writer, entry, 200, {
                "ok": True, "version": API_VERSION, "address": conn.client, "auth": bool(self.tokens),
                "max_ports": self.settings.max_ports})
        elif path == "/v1/probe":
            if head.method != "POST":
                raise RequestError(405, "use POST for /v1/probe", "POST a JSON body", {"Allow": "POST"})
            self._admit(conn, head, entry)
            specs, timeout = parse_probe_request(body, self.probe_limits)
            await self._probe(conn.client, specs, timeout, writer, entry)
        elif path == "/v1/hold":
            self._admit(conn, head, entry)
            await self._hold(conn.client, hold_lifetime(head.query, self.settings.hold_max), reader, writer, entry)
        else:
            raise RequestError(404, f"no such endpoint {path}", "use POST /v1/probe or GET /v1/hold")

    def _admit(self, conn: _Conn, head: HttpHead, entry: LogEntry) -> None:
        """The token (when required), then one unit of the address's and the token's shared budget."""
        token = self._token_id(head)
        entry.token = token
        refusal = self.limits.spend(conn.client, token)
        if refusal is not None:
            raise _refused(refusal, f"retry after {refusal.retry_after:.0f} s")

    def _token_id(self, head: HttpHead) -> str | None:
        """Which token the request carries ("#1", "#2", ...: never the token itself); RequestError when wrong."""
        if not self.tokens:
            return None
        header = head.headers.get("authorization", "")
        if not header:
            raise RequestError(401, "this reflector needs a token", "set token_file in the [[probe]] section",
                               {"WWW-Authenticate": "Bearer"})
        scheme, _, given = header.partition(" ")
        found = None
        for i, token in enumerate(self.tokens):  # compare with every token so the timing tells nothing
            if hmac.compare_digest(given.strip().encode(), token) and scheme.lower() == "bearer":
                found = f"#{i + 1}"
        if found is None:
            raise RequestError(403, "the token is wrong", "use the reflector's token file", reason="wrong token")
        return found

    async def _probe(self, address: str, specs: list[PortSpec], timeout: float, writer: asyncio.StreamWriter,
                     entry: LogEntry) -> None:
        """Every port of one request at once (TCP as one batch of loop callbacks); the TCP dials are closed after
        the answer is sent, so the requester does not wait for the closes."""
        tcp = [i for i, s in enumerate(specs) if s.protocol != "udp"]
        udp = [i for i, s in enumerate(specs) if s.protocol == "udp"]
        batch = reflector_dial.TcpBatch(address, [(specs[i].port, specs[i].read) for i in tcp], timeout,
                                        self._dial_slots)
        try:
            found = await asyncio.gather(batch.run(), *(self._dial_udp(address, specs[i], timeout) for i in udp))
            outcomes: list[DialOutcome] = [DialOutcome("error", 0.0)] * len(specs)
            for i, out in zip(tcp, found[0]):
                outcomes[i] = out
            for i, out in zip(udp, found[1:]):
                outcomes[i] = out
            results = []
            for spec, out in zip(specs, outcomes):
                self.metrics.dialbacks[out.outcome] += 1
                results.append({"port": spec.port, "protocol": spec.protocol, "outcome": out.outcome,
                                "elapsed": round(out.elapsed, 4), "data": base64.b64encode(out.data).decode(),
                                "error": out.error})
            entry.detail = "probed=" + ",".join(f"{r['port']}/{r['protocol']}:{r['outcome']}" for r in results)
            family = "ipv6" if ":" in address else "ipv4"
            # the dials are closed once the answer is with the transport, not after a slow reader took it
            await self._send_json(writer, entry, 200, {"address": address, "family": family, "results": results},
                                  written=batch.close)
        finally:
            batch.close()

    async def _dial_udp(self, address: str, spec: PortSpec, timeout: float) -> DialOutcome:
        assert self._dial_slots is not None
        async with self._dial_slots:  # the reflector's total of concurrent dial-backs is bounded
            payload = spec.send if spec.send is not None else UDP_PAYLOAD
            return await reflector_dial.dial_udp(address, spec.port, timeout, payload, read=max(spec.read, 1))

    async def _hold(self, address: str, lifetime: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    entry: LogEntry) -> None:
        refusal = self.limits.hold(address)
        if refusal is not None:
            raise _refused(refusal, "close some before opening more")
        self.metrics.held_connections += 1
        try:
            entry.status = 101
            await write(writer, (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: {HOLD_UPGRADE}\r\n"
                                  "Connection: Upgrade\r\n\r\n").encode())
            started = time.monotonic()
            reason = await echo_lines(reader, writer, lifetime)
            entry.detail = f"held={time.monotonic() - started:.1f}s end={reason!r}"
        finally:
            self.metrics.held_connections -= 1
            self.limits.unhold(address)

    async def _send_json(self, writer: asyncio.StreamWriter, entry: LogEntry, status: int, doc: dict[str, Any],
                         written: Callable[[], None] | None = None) -> None:
        await self._send(writer, entry, status, json.dumps(doc).encode(), "application/json", written)

    async def _send(self, writer: asyncio.StreamWriter, entry: LogEntry, status: int, body: bytes,
                    kind: str, written: Callable[[], None] | None = None) -> None:
        entry.status = status
        await write(writer, response(status, body, {}, kind), written)


_ENDPOINTS = {"/v1/health", "/", "/v1/probe", "/v1/hold", "/metrics"}


def _refused(refusal: Refusal, hint: str) -> RequestError:
    return RequestError(refusal.status, refusal.message, hint, _retry_after(refusal), refusal.reason)


def _retry_after(refusal: Refusal) -> dict[str, str]:
    return {"Retry-After": str(max(1, round(refusal.retry_after)))}


def _closing(message: str) -> OSError:
    log.warning("%s", message)
    return ConnectionAbortedError(message)


