"""The sandbox's moving parts around the lab: stand-in service, reflector, natlink's config and service,
outside checks (DNS from the internet host, TCP connects from it), keeping and tearing down.

Every process is started inside a lab namespace, in its own session (Ctrl-C in the terminal reaches only
the demo, which then tears everything down), with its output in the lab's workdir.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from natlink.errors import NatlinkError
from natlink.output import Output
from natlink.lab import Lab
from natlink.lab import probes as lab_probes
from natlink.lab.procs import tail

log = logging.getLogger(__name__)

T = TypeVar("T")
REFLECTOR_PORT = 8765
INFO_FILE = "demo.json"  # in the lab's workdir: what `--keep` left running


class DemoError(NatlinkError):
    """A sandbox part did not come up or natlink did not do its job in time."""


@dataclass
class Waited:
    ok: bool
    elapsed: float
    last: Any = None  # the last value (or exception) seen


def wait_until(check: Callable[[], T], done: Callable[[T], bool], timeout: float, interval: float = 0.005) -> Waited:
    """Poll check() until done(value) or timeout; exceptions count as not done."""
    started = time.monotonic()
    last: Any = None
    while True:
        try:
            last = check()
            if done(last):
                return Waited(True, time.monotonic() - started, last)
        except Exception as exc:  # a refused connect or a DNS timeout is just "not yet"
            last = exc
        if time.monotonic() - started >= timeout:
            return Waited(False, time.monotonic() - started, last)
        time.sleep(interval)


def python_m(*args: str) -> list[str]:
    """This Python running a module of the natlink it runs: -P keeps the working directory off sys.path, so
    `sudo natlink demo` in a checkout does not import (and leave root-owned caches in) the checkout's copy."""
    return [sys.executable, "-P", "-m", *args]


def natlink_argv() -> list[str]:
    """How a person types natlink on this machine (for printed instructions)."""
    return ["natlink"] if shutil.which("natlink") else python_m("natlink")


@dataclass
class Sandbox:
    lab: Lab
    config_path: Path = Path()
    procs: dict[str, subprocess.Popen[Any]] = field(default_factory=dict)
    notify: socket.socket | None = None

    # ------------------------------------------------------------------ paths

    def path(self, name: str) -> Path:
        return Path(self.lab.workdir) / name

    @property
    def state_dir(self) -> str:
        return str(self.path("state"))

    @property
    def reflector_url(self) -> str:
        return f"http://{self.lab.wan_host_ip}:{REFLECTOR_PORT}"

    def log_tail(self, name: str, lines: int = 6) -> str:
        return tail(str(self.path(f"{name}.log")), lines)

    # ------------------------------------------------------------------ processes

    def spawn(self, name: str, host: str, argv: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[Any]:
        with open(self.path(f"{name}.log"), "ab") as logf:
            proc = self.lab.popen(host, list(argv), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                  start_new_session=True, env=env)
        self.procs[name] = proc
        return proc

    def _alive_or_raise(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise DemoError(f"{name} exited (code {proc.returncode}) in the sandbox: "
                            f"{self.log_tail(name, 3).replace(chr(10), ' | ') or 'no output'}")

    def start_helpers(self, ports: Sequence[int], timeout: float = 5.0) -> None:
        """The stand-in services on the LAN host and natlink's reflector on the internet host, in parallel."""
        if ports:
            self.spawn("standin", "lan", python_m("natlink.demo.standin", *map(str, ports)))
        self.spawn("reflector", "wan", python_m("natlink", "reflector", "--listen",
                                                f"{self.lab.wan_host_ip}:{REFLECTOR_PORT}", "--insecure-http"))
        checks: list[tuple[str, Callable[[], Any]]] = [
            ("reflector", lambda: self.lab.call("wan", lab_probes.http_get_status, self.lab.wan_host_ip,
                                                REFLECTOR_PORT, "/", 0.3))]
        checks += [("standin", lambda p=p: self.lab.tcp_banner("lan", self.lab.lan_ip, p, 0.3)) for p in ports]
        for name, check in checks:
            def ready(check: Callable[[], Any] = check, name: str = name) -> bool:
                self._alive_or_raise(name)
                check()
                return True

            waited = wait_until(ready, bool, timeout, 0.01)
            if not waited.ok:
                if isinstance(waited.last, DemoError):
                    raise waited.last
                raise DemoError(f"the {name} did not answer within {timeout:g} s in the sandbox")

    def write_config(self, text: str) -> Path:
        self.config_path = self.path("natlink.toml")
        self.config_path.write_text(text, encoding="utf-8")
        return self.config_path

    def start_service(self, timeout: float = 5.0) -> float:
        """`natlink run` on the LAN host; returns when it told us READY=1 (sd_notify), i.e. its scheduler and
        router-announcement listener are up. A path-bound socket reaches across network namespaces."""
        sock_path = str(self.path("notify.sock"))
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(sock_path)
        self.notify.settimeout(0.05)
        started = time.monotonic()
        env = {**os.environ, "NOTIFY_SOCKET": sock_path}
        env.pop("WATCHDOG_USEC", None)
        self.spawn("service", "lan", python_m("natlink", "-c", str(self.config_path), "run"), env=env)
        while time.monotonic() - started < timeout:
            self._alive_or_raise("service")
            with contextlib.suppress(TimeoutError, BlockingIOError):
                if b"READY=1" in self.notify.recv(4096).split(b"\n"):
                    return time.monotonic() - started
        raise DemoError(f"natlink run did not report ready within {timeout:g} s: "
                        f"{self.log_tail('service', 3).replace(chr(10), ' | ')}")

    @property
    def service_pid(self) -> int | None:
        proc = self.procs.get("service")
        return proc.pid if proc is not None and proc.poll() is None else None

    # ------------------------------------------------------------------ natlink in the LAN host

    def in_lan(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run natlink's own code inside the LAN host (sockets it makes stay there)."""
        return self.lab.call("lan", fn, *args, **kwargs)

    # ------------------------------------------------------------------ the view from outside

    def resolve(self, hostname: str, timeout: float = 0.5) -> list[str]:
        """A records of hostname, asked from the internet host at the sandbox's DNS server."""
        import dns.message
        import dns.query
        import dns.rdatatype

        def query() -> list[str]:
            answer = dns.query.udp(dns.message.make_query(hostname, "A"), self.lab.dns_server,
                                   timeout=timeout, port=self.lab.dns_port)
            return sorted(rd.to_text() for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset)

        return self.lab.call("wan", query)

    def connect_from_outside(self, address: str, port: int, timeout: float = 0.5) -> bytes:
        """What a client on the internet host reads from address:port (raises like a real client)."""
        return self.lab.tcp_banner("wan", address, port, timeout)

    # ------------------------------------------------------------------ the end

    def keep(self, info: dict[str, Any]) -> None:
        self.lab.keep()
        if self.notify is not None:
            self.notify.close()
        self.path(INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")

    def teardown(self) -> None:
        """Everything goes: processes, namespaces, files. A second Ctrl-C must not leave half a network."""
        with _ignoring_sigint():
            if self.notify is not None:
                with contextlib.suppress(OSError):
                    self.notify.close()
            self.lab.stop()


@contextlib.contextmanager
def _ignoring_sigint() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def kept_sandboxes() -> list[dict[str, Any]]:
    """Sandboxes left by `natlink demo --keep` (tag, workdir and what the demo wrote about them)."""
    out = []
    for record in Lab.kept_labs():
        info: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((Path(record.workdir) / INFO_FILE).read_text(encoding="utf-8"))
        out.append({"tag": record.tag, "workdir": record.workdir, **info})
    return out


def tidy_stale(out: Output) -> None:
    """Remove labs whose owner provably died (killed demos, crashed tests), saying what went; name the
    look-alikes and the labs of other PID namespaces that were left alone."""
    cleanup = Lab.cleanup_stale()
    for tag, what in sorted(cleanup.removed.items()):
        out.note(f"note: removed a lab left by a dead natlink process (lab {tag}: {', '.join(what) or 'its record'})")
    if cleanup.unowned:
        out.note(f"note: left alone: namespace(s) {', '.join(cleanup.unowned)} look like natlink's but have no owner "
                 "record here")
    if cleanup.unproven:
        out.note(f"note: left alone: lab(s) {', '.join(cleanup.unproven)} belong to a process natlink cannot see "
                 "from here (another PID namespace or boot)")


def destroy_kept() -> list[str]:
    with _ignoring_sigint():
        return Lab.destroy_kept()
