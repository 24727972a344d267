"""A real knot on loopback serving home.example (the lab's own zone and config), for tests of the live-record
check: natlink reads names from it as from any authoritative server, and `set()` changes a record by hand
with knsupdate, the way a user (or a provider losing data) would."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dns.exception
import dns.flags
import dns.message
import dns.query
import pytest

from natlink.lab.dns import TsigKey, knot_conf, zone_text

ZONE = "home.example"
IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")


@dataclass
class LocalKnot:
    port: int
    key: TsigKey
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, rtype: str, *values: str) -> None:
        """Replace name's rtype records by hand (no values: delete them)."""
        lines = [f"server 127.0.0.1 {self.port}", f"zone {ZONE}.", f"update delete {name}. {rtype}"]
        lines += [f"update add {name}. 60 {rtype} {v}" for v in values]
        subprocess.run(["knsupdate", "-y", self.key.knot_format()], input="\n".join(lines + ["send", ""]),
                       text=True, check=True, capture_output=True, timeout=10)

    def get(self, name: str, rtype: str) -> list[str]:
        response = dns.query.udp(dns.message.make_query(name, rtype), "127.0.0.1", timeout=2, port=self.port)
        return sorted(rd.to_text() for rrset in response.answer for rd in rrset)


def _free_port() -> int:
    """A port free for both UDP and TCP right now (knot listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def _start(workdir: Path, key: TsigKey) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = _free_port()
    conf = workdir / "knot.conf"
    conf.write_text(knot_conf(workdir=str(workdir), listen_ip="127.0.0.1", port=port, zone=ZONE, key=key))
    log = workdir / "knot.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["knotd", "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc, port, log


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _answers(port: int) -> bool:
    try:
        query = dns.message.make_query(ZONE, "SOA")
        return bool(dns.query.udp(query, "127.0.0.1", timeout=0.2, port=port).flags & dns.flags.AA)
    except (OSError, dns.exception.DNSException):
        return False


@pytest.fixture
def knot(tmp_path: Path) -> Iterator[LocalKnot]:
    if shutil.which("knotd") is None or shutil.which("knsupdate") is None:
        message = "knot (knotd, knsupdate) is not installed: apt-get install knot knot-dnsutils"
        if IN_CI:
            pytest.fail(message + " (CI=true: these tests must run)", pytrace=False)
        pytest.skip(message)
    workdir = tmp_path / "knot-work"
    (workdir / "knot").mkdir(parents=True)
    key = TsigKey("natlink-test")
    (workdir / "knot" / f"{ZONE}.zone").write_text(zone_text(ZONE, "127.0.0.1"))
    for _attempt in range(3):  # another process may take the port between our check and knot's bind
        proc, port, log = _start(workdir, key)
        deadline = time.monotonic() + 10
        while not _answers(port) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None and _answers(port):
            break
        _stop(proc)
        if "address already in use" not in log.read_text():
            pytest.fail(f"knotd did not start: {log.read_text()[-500:]}", pytrace=False)
    else:
        pytest.fail(f"knotd found no free port: {log.read_text()[-500:]}", pytrace=False)
    try:
        yield LocalKnot(port, key, proc, log)
    finally:
        _stop(proc)
