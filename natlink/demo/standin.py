"""A stand-in for the service a mapping points at (e.g. remote desktop on 3389): greets every connection
with one line and closes it. Run as a process in the sandbox's LAN host so it can outlive `natlink demo
--keep`:  python -m natlink.demo.standin PORT [PORT...]"""

from __future__ import annotations

import selectors
import signal
import socket
import sys


def banner(port: int) -> bytes:
    return f"natlink demo: test service on port {port}\n".encode()


def serve(ports: list[int]) -> None:
    sel = selectors.DefaultSelector()
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen(64)
        sel.register(sock, selectors.EVENT_READ, port)
    print("ready", flush=True)  # the demo waits for this line
    while True:
        for key, _ in sel.select():
            try:
                conn, _peer = key.fileobj.accept()  # type: ignore[union-attr]
            except OSError:
                continue
            with conn:
                try:
                    conn.settimeout(1)
                    conn.sendall(banner(key.data))
                except OSError:
                    pass


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve([int(p) for p in argv])
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError) as exc:
        print(f"natlink demo test service: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
