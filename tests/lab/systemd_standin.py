"""Stand-ins on loopback INSIDE the systemd test container (copied there and run by the container's python3,
stdlib only): what natlink.service talks to when a router and a DDNS provider cannot run there.

- UDP 127.0.0.1:5351: a NAT-PMP gateway as RFC 6886 describes it (public address, map, delete), with an
  external address of 11.0.0.5 and its epoch counted from start.
- TCP 127.0.0.1:8053: a dyndns2 server (GET /nic/update, Basic auth; "good IP" / "nochg IP" / "badauth" as the
  dyndns2 protocol documents), and /trickle/nic/update, which sends its answer one byte per second and never
  finishes (a hung provider).
Every request is one JSON line in the log file given as argv[1] (whether the credential matched; never the
credential itself). The expected password is read from argv[2]. Not a test module."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, urlparse

EXTERNAL = "11.0.0.5"
STARTED = time.monotonic()
LOCK = threading.Lock()


def record(log_path: str, **fields: object) -> None:
    with LOCK, open(log_path, "a") as log:
        log.write(json.dumps(fields) + "\n")


def natpmp_answer(request: bytes) -> bytes | None:
    """RFC 6886 section 3.2 / 3.3 answers; None for what a gateway ignores."""
    if len(request) < 2 or request[0] != 0:
        return None
    epoch = int(time.monotonic() - STARTED)
    op = request[1]
    if op == 0 and len(request) == 2:
        return struct.pack("!BBHI4s", 0, 128, 0, epoch, socket.inet_aton(EXTERNAL))
    if op in (1, 2) and len(request) == 12:
        internal, external, lifetime = struct.unpack("!HHI", request[4:12])
        granted = 0 if lifetime == 0 else (external or internal)
        return struct.pack("!BBHIHHI", 0, 128 + op, 0, epoch, internal, granted, lifetime)
    return struct.pack("!BBHI", 0, 128 + op, 5, epoch)  # unsupported opcode


def serve_natpmp(log_path: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 5351))
    while True:
        data, peer = sock.recvfrom(1100)
        answer = natpmp_answer(data)
        record(log_path, kind="natpmp", op=data[1] if len(data) > 1 else None)
        if answer is not None:
            sock.sendto(answer, peer)


def make_handler(log_path: str, password: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            auth = self.headers.get("Authorization", "")
            sent = base64.b64decode(auth[6:]).decode(errors="replace") if auth.startswith("Basic ") else ""
            auth_ok = sent.partition(":")[2] == password
            record(log_path, kind="http", path=url.path, auth_ok=auth_ok, hostname=query.get("hostname"),
                   myip=query.get("myip"))
            if url.path == "/trickle/nic/update":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                try:
                    while True:
                        self.wfile.write(b"g")
                        self.wfile.flush()
                        time.sleep(1)
                except OSError:
                    return
            if url.path != "/nic/update":
                return self.answer(404, "not found")
            if not auth_ok:
                return self.answer(401, "badauth")
            self.answer(200, f"good {query.get('myip', EXTERNAL)}")

        def answer(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    log_path, password_file = sys.argv[1], sys.argv[2]
    with open(password_file) as f:
        password = f.read().strip()
    threading.Thread(target=serve_natpmp, args=(log_path,), daemon=True).start()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 8053), make_handler(log_path, password))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
