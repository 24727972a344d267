"""The lab's floor for dial-backs, with no natlink code on either side: what N verified targets must cost at least.

    sudo python bench/probe_floor.py [--rounds 200]

The same path as bench/probe_bench.py (WAN host -> router DNAT 4000+i -> LAN host 5000+i), driven by the smallest
Python that can do the job: in the LAN namespace one epoll loop that accepts and sends a 47-byte line with its
FIN (what natlink's nonce hub does), in the WAN namespace non-blocking connects to every port at once, a read of
the line and a reset (what the reflector does). Prints the wall time for 1 and N dial-backs, the cost of each
extra one, and the time spent inside connect() itself: over veth the kernel runs the whole path (the router's
NAT, the LAN host's TCP stack, the SYN-ACK back) in the caller's system call, so one event loop pays it once per
dial-back, in series.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import time

from natlink.lab import Lab

LINE = b"NATLINK-PROBE " + b"0" * 32 + b"\n"
LAN_SERVER = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector()
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], 5000 + i))
    s.listen(64)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        try:
            conn, _peer = key.fileobj.accept()
        except BlockingIOError:
            continue
        conn.send(%r, socket.MSG_DONTWAIT | socket.MSG_MORE)
        conn.close()
""" % LINE
RESET = struct.pack("ii", 1, 0)


def dial_all(host: str, n: int, in_connect: list[float]) -> float:
    """Connect to host:4000..4000+n-1 at once, read each line, reset each; the wall time of the whole batch."""
    sel = selectors.DefaultSelector()
    started = time.perf_counter()
    got: dict[socket.socket, int] = {}
    for i in range(n):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        t = time.perf_counter()
        sock.connect_ex((host, 4000 + i))
        in_connect.append(time.perf_counter() - t)
        sel.register(sock, selectors.EVENT_READ)
        got[sock] = 0
    while got:
        for key, _ in sel.select(2.0):
            sock = key.fileobj
            data = sock.recv(64)
            got[sock] += len(data)
            if not data or got[sock] >= len(LINE):
                sel.unregister(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
                sock.close()
                del got[sock]
    sel.close()
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--targets", type=int, default=20)
    args = ap.parse_args()
    with Lab() as lab:
        for i in range(args.targets):
            lab.run("lan", ["upnpc", "-u", lab.igd_url, "-e", f"natlink:m{i}", "-a", lab.lan_ip, str(5000 + i),
                            str(4000 + i), "TCP"])
        server = lab.popen("lan", [sys.executable, "-c", LAN_SERVER, lab.lan_ip, str(args.targets)],
                           stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        wan_ip = lab.wan_ip

        def rounds(n: int, in_connect: list[float]) -> list[float]:
            dial_all(wan_ip, n, [])  # warm-up (ARP, conntrack)
            return [dial_all(wan_ip, n, in_connect) for _ in range(args.rounds)]

        in_connect: list[float] = []
        one = lab.call("wan", rounds, 1, [])
        many = lab.call("wan", rounds, args.targets, in_connect)
        m1, mn = statistics.median(one), statistics.median(many)
        print(f"1 dial-back:   median {m1 * 1e6:6.0f} us")
        print(f"{args.targets} dial-backs: median {mn * 1e6:6.0f} us  -> {(mn - m1) / (args.targets - 1) * 1e6:.0f} us "
              "per extra dial-back (the floor under natlink's per-target cost)")
        print(f"inside connect(): median {statistics.median(in_connect) * 1e6:.0f} us per dial-back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
