"""Reflector throughput, latency and memory per slow connection, on loopback only.

    python bench/reflector_bench.py [--seconds 5] [--concurrency 8]

The reflector runs as its own process (`natlink reflector --insecure-http --rate 0`), pinned with taskset to
one core and then to two. A load client (asyncio, this process) sends POST /v1/probe from 32 source addresses
127.0.0.2-33; each request makes the reflector dial back one TCP port on the requester (a listener here
that accepts and closes). Then idle connections (connected, nothing sent) and slow ones (half a request
head sent) are opened from many 127.0.0.x addresses and the reflector's RSS growth per connection is read
from /proc. Targets: >= 500 requests/s with p99 < 50 ms; < 2 KiB RSS per idle slow connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

SOURCES = [f"127.0.0.{i}" for i in range(2, 34)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_reflector(cpus: str, port: int) -> subprocess.Popen[bytes]:
    argv = ["taskset", "-c", cpus, sys.executable, "-m", "natlink", "reflector", "--listen", f"127.0.0.1:{port}",
            "--insecure-http", "--rate", "0", "--max-connections", "20000", "--connections-per-address", "2000"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=_all_descriptors)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the reflector did not start")


def _all_descriptors() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


async def one_request(port: int, source: str, body: bytes) -> float:
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"POST /v1/probe HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    data = await reader.read()
    writer.close()
    if not data.startswith(b"HTTP/1.1 200") or b'"outcome": "open"' not in data:
        raise RuntimeError(f"unexpected answer: {data[:200]!r}")
    return time.perf_counter() - t0


async def load(port: int, seconds: float, concurrency: int) -> tuple[int, list[float], float]:
    async def accept_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    target = await asyncio.start_server(accept_and_close, "0.0.0.0", 0)  # every 127.0.0.x reaches it
    body = json.dumps({"ports": [target.sockets[0].getsockname()[1]], "timeout": 2}).encode()
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        n = 0
        while time.perf_counter() < end:
            latencies.append(await one_request(port, SOURCES[(i + n) % len(SOURCES)], body))
            n += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - t0
    target.close()
    return len(latencies), latencies, elapsed


def open_connections(port: int, count: int, send: bytes) -> list[socket.socket]:
    socks = []
    for i in range(count):
        s = socket.socket()
        s.bind((f"127.0.{1 + i // 250}.{2 + i % 250}", 0))
        s.connect(("127.0.0.1", port))
        if send:
            s.send(send)
        socks.append(s)
    return socks


def memory(cpus: str, count: int) -> dict[str, float]:
    out = {}
    for label, send in (("idle", b""), ("half-head", b"POST /v1/probe HTTP/1.1\r\nHost: b\r\n")):
        port = free_port()
        proc = start_reflector(cpus, port)
        try:
            warm = open_connections(port, 200, send)  # the first connections allocate the loop's structures
            time.sleep(1.0)
            before = rss_kib(proc.pid)
            socks = open_connections(port, count, send)
            time.sleep(1.5)
            after = rss_kib(proc.pid)
            out[label] = (after - before) * 1024 / count
            for s in warm + socks:
                s.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--connections", type=int, default=3000)
    args = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    args.connections = min(args.connections, hard - 500)
    for cpus, label in (("0", "1 core"), ("0,1", "2 cores")):
        port = free_port()
        proc = start_reflector(cpus, port)
        try:
            asyncio.run(load(port, 1.0, args.concurrency))  # warm-up
            n, lat, elapsed = asyncio.run(load(port, args.seconds, args.concurrency))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        lat.sort()
        p50, p99 = statistics.median(lat), lat[int(0.99 * (len(lat) - 1))]
        print(f"{label}: {n / elapsed:6.0f} probe requests/s (each one dial-back), p50 {p50 * 1000:5.1f} ms, "
              f"p99 {p99 * 1000:5.1f} ms, max {lat[-1] * 1000:5.1f} ms  ({n} requests, concurrency "
              f"{args.concurrency}; target >= 500/s, p99 < 50 ms)")
    for label, per in memory("0", args.connections).items():
        print(f"RSS growth per {label} slow connection: {per:6.0f} bytes  ({args.connections} connections; "
              f"target < 2048 for idle)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
