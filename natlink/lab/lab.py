"""The Lab: a home network in network namespaces — LAN hosts, a NAT router with miniupnpd,
and a WAN host running knot — built in well under a second and torn down completely.

Topology (names carry the lab's tag, so parallel labs never collide)::

    lan  10.0.1.201 ─┐
                     ├─ bridge 10.0.1.1 [rtr] wan_ip ── wan_host_ip [wan] (knot)
    lan2 10.0.1.99  ─┘     nftables NAT + miniupnpd

Nothing touches the host's own interfaces or routes: every veth is created directly
inside its namespaces, and the WAN subnet exists only between rtr and wan.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, TypeVar

from natlink.lab import probes, registry
from natlink.lab.dns import Knot, TsigKey
from natlink.lab.errors import LabError
from natlink.lab.ipv6 import Ipv6Topology
from natlink.lab.netns import call_in_netns, enter_netns, run_cmd
from natlink.lab.prereq import check_prerequisites, tool
from natlink.lab.procs import stop_process
from natlink.lab.router import Miniupnpd, RouterConfig, install_ruleset
from natlink.lab.scenarios import NetworkEvents
from natlink.lab.services import TcpService
from natlink.lab.topology import SCENARIOS, build_network, wan_host_for

T = TypeVar("T")

HOSTS = registry.HOST_NAMES


def _sigterm_to_exit(signum: int, frame: FrameType | None) -> None:
    """SIGTERM → SystemExit, so try/finally blocks and atexit hooks tear labs down."""
    raise SystemExit(128 + signum)


class Lab(NetworkEvents):
    """A disposable network-namespace test bed. Use as ``with Lab() as lab:``."""

    lan_ip = "10.0.1.201"
    lan2_ip = "10.0.1.99"
    gateway = "10.0.1.1"
    lan_prefix = 24
    dns_port = 53
    zone = "home.example"
    tsig_algorithm = "hmac-sha256"

    def __init__(
        self,
        scenario: str = "normal",
        *,
        knot: bool = True,
        miniupnpd: bool = True,
        lan2: bool = True,
        wan_ip: str | None = None,
        tag: str | None = None,
        zones: Sequence[str] = (),
        ipv6: bool | None = None,
    ) -> None:
        if scenario not in SCENARIOS:
            raise LabError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
        self.scenario = scenario
        self.tag = tag or secrets.token_hex(3)
        if not registry.valid_tag(self.tag):
            raise LabError(f"lab tag must be 1-8 characters [0-9a-z], not {self.tag!r}")
        preset = SCENARIOS[scenario]
        self.wan_ip = wan_ip or preset.wan_ip
        self.wan_prefix = preset.prefix
        self.wan_host_ip = wan_host_for(self.wan_ip, preset)
        self.dns_server = self.wan_host_ip
        self.with_knot = knot
        self.with_miniupnpd = miniupnpd
        self.with_lan2 = lan2
        self.with_ipv6 = preset.ipv6 if ipv6 is None else ipv6
        # Extra DNS zones knot serves besides ``zone`` (updatable with the same TSIG key).
        self.extra_zones = tuple(z.rstrip(".").lower() for z in zones if z.rstrip(".").lower() != self.zone)

        p = f"nl{self.tag}"
        self.lan_ifname = f"{p}-lan"
        self.lan2_ifname = f"{p}-l2"
        self.lan_bridge = f"{p}-br"  # the router's LAN interface (10.0.1.1), miniupnpd listens here
        self.wan_ifname = f"{p}-wan"  # the router's WAN interface
        self.wan_host_ifname = f"{p}-w"
        self._rtr_lan_port = f"{p}-rl"
        self._rtr_lan2_port = f"{p}-rl2"

        self.tsig_key_name = "natlink-lab"
        self.workdir = ""
        self._key = TsigKey(self.tsig_key_name, self.tsig_algorithm)
        self._router_cfg = RouterConfig(ns=self.ns("rtr"), lan_if=self.lan_bridge, wan_if=self.wan_ifname,
                                        ipv6=self.with_ipv6, ipv6_firewall_control=preset.ipv6_firewall_control)
        self._ipv6: Ipv6Topology | None = None
        if self.with_ipv6:
            hosts6 = {h: self.ns(h) for h in self.hosts}
            ifnames = {"lan": self.lan_ifname, "lan2": self.lan2_ifname, "rtr": self.lan_bridge,
                       "wan": self.wan_host_ifname}
            self._ipv6 = Ipv6Topology(ns=hosts6, ifname={h: ifnames[h] for h in hosts6}, rtr_wan_if=self.wan_ifname)
        self._miniupnpd: Miniupnpd | None = None
        self._knot: Knot | None = None
        self._procs: list[subprocess.Popen[Any]] = []
        self._services: list[TcpService] = []
        self._started = False
        self._stopped = False

    # ------------------------------------------------------------------ naming / attributes

    def ns(self, host: str) -> str:
        """Real netns name of ``host`` (lan, lan2, rtr, wan)."""
        if host not in HOSTS:
            raise LabError(f"unknown lab host {host!r}; hosts are {', '.join(HOSTS)}")
        if host == "lan2" and not self.with_lan2:
            raise LabError("this lab was created with lan2=False")
        return registry.ns_name(self.tag, host)

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(h for h in HOSTS if h != "lan2" or self.with_lan2)

    @property
    def igd_url(self) -> str:
        return f"http://{self.gateway}:{self._router_cfg.http_port}/rootDesc.xml"

    def _v6(self) -> Ipv6Topology:
        if self._ipv6 is None:
            raise LabError("this lab has no IPv6; use a scenario such as dual-stack or pass ipv6=True")
        return self._ipv6

    @property
    def lan_prefix6(self) -> str:
        """The LAN's current IPv6 /64 (changes with ipv6_renumber)."""
        return self._v6().lan_prefix

    @property
    def lan_ip6(self) -> str:
        return self._v6().address("lan")

    @property
    def gateway6(self) -> str:
        return self._v6().address("rtr")

    @property
    def wan_ip6(self) -> str:
        return self._v6().wan_router_ip

    @property
    def wan_host_ip6(self) -> str:
        return self._v6().wan_host_ip

    @property
    def tsig_secret(self) -> str:
        return self._key.secret

    @property
    def tsig_key_file(self) -> str:
        """BIND-format key file (``key "name" { algorithm ...; secret "..."; };``)."""
        return os.path.join(self.workdir, "tsig.key")

    @property
    def tsig_knot_key_file(self) -> str:
        """The same key as ``algorithm:name:secret`` — the format ``knsupdate -k`` / ``kdig -k`` parse."""
        return os.path.join(self.workdir, "tsig.knot-key")

    @property
    def tsig_y_arg(self) -> str:
        """Value for ``knsupdate -y`` / ``kdig -y``."""
        return self._key.knot_format()

    @property
    def miniupnpd_pid(self) -> int | None:
        return self._miniupnpd.pid if self._miniupnpd else None

    @property
    def knot_pid(self) -> int | None:
        return self._knot.pid if self._knot else None

    def describe(self) -> str:
        """Human-readable summary (for ``natlink demo`` and debugging)."""
        lines = [
            f"lab {self.tag} ({self.scenario}), files in {self.workdir or '-'}",
            f"  lan   {self.lan_ip:<15} ns {self.ns('lan')}  iface {self.lan_ifname}",
        ]
        if self.with_lan2:
            lines.append(f"  lan2  {self.lan2_ip:<15} ns {self.ns('lan2')}")
        lines += [
            f"  rtr   {self.gateway:<15} ns {self.ns('rtr')}  WAN {self.wan_ip}  IGD {self.igd_url}"
            f"  miniupnpd pid {self.miniupnpd_pid or '-'}",
            f"  wan   {self.wan_host_ip:<15} ns {self.ns('wan')}  DNS {self.dns_server}:{self.dns_port}"
            f" zone {self.zone}  knotd pid {self.knot_pid or '-'}",
        ]
        if self._ipv6 is not None:
            lines.append(f"  IPv6  LAN {self.lan_prefix6} (lan {self.lan_ip6}, rtr {self.gateway6}), rtr WAN "
                         f"{self.wan_ip6}, wan {self.wan_host_ip6}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Lab(scenario={self.scenario!r}, tag={self.tag!r}, wan_ip={self.wan_ip!r})"

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def cleanup_stale(cls) -> registry.Cleanup:
        """Remove namespaces, processes and files of labs whose record says their owner is provably dead
        (kept labs excepted); namespaces without a record and owners we cannot judge are left alone."""
        return registry.cleanup_stale()

    def keep(self) -> None:
        """Leave this lab up after this process exits (``natlink demo --keep``).

        Its record is marked kept, so cleanup_stale() spares it; destroy_kept() removes it.
        Processes started with popen() survive only if started with start_new_session=True.
        An explicit stop() still tears it down."""
        if not self._started or self._stopped:
            raise LabError("only a running lab can be kept")
        registry.mark_kept(self.tag)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    @staticmethod
    def kept_labs() -> list[registry.OwnerRecord]:
        """Labs left up with keep(), by anyone."""
        return registry.kept_records()

    @staticmethod
    def destroy_kept(tag: str | None = None) -> list[str]:
        """Tear down kept labs (all, or the one with ``tag``): processes, namespaces, files. Returns their tags."""
        tags = [r.tag for r in registry.kept_records() if tag is None or r.tag == tag]
        for t in tags:
            registry.destroy(t)
        return tags

    def start(self, timeout: float = 5.0) -> Lab:
        """Build the topology, start the daemons, wait until they answer."""
        if self._started:
            raise LabError("a Lab can be started only once; create a new one")
        problems = check_prerequisites()
        if problems:
            raise LabError("lab prerequisites missing: " + "; ".join(problems))
        self._started = True
        registry.cleanup_stale()
        self.workdir = tempfile.mkdtemp(prefix=f"natlink-lab-{self.tag}-")
        try:
            registry.claim(self.tag, self.workdir)
        except FileExistsError as exc:
            os.rmdir(self.workdir)
            self._stopped = True
            raise LabError(f"a lab with tag {self.tag!r} already exists") from exc
        atexit.register(self.stop)
        self._install_sigterm_handler()
        try:
            build_network(self)
            install_ruleset(self._router_cfg)
            self._knot = Knot(
                ns=self.ns("wan"),
                workdir=self.workdir,
                listen_ip=self.wan_host_ip,
                port=self.dns_port,
                zone=self.zone,
                key=self._key,
                extra_zones=self.extra_zones,
            )
            self._knot.write_files()  # key files exist even with knot=False
            self._miniupnpd = Miniupnpd(self._router_cfg, self.workdir)
            if self.with_knot:
                self._knot.start()
            if self.with_miniupnpd:
                self._miniupnpd.start()
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill everything this lab started and delete its namespaces. Idempotent, never raises."""
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        for service in self._services:
            with contextlib.suppress(Exception):
                service.stop()
        for proc in self._procs:
            with contextlib.suppress(Exception):
                stop_process(proc)
        for daemon in (self._miniupnpd, self._knot):
            if daemon is not None:
                with contextlib.suppress(Exception):
                    daemon.stop()
        with contextlib.suppress(Exception):
            keep = os.environ.get("NATLINK_LAB_KEEP_WORKDIR")
            registry.destroy(self.tag, None if keep else self.workdir)

    @staticmethod
    def _install_sigterm_handler() -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with contextlib.suppress(ValueError):
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _sigterm_to_exit)

    # ------------------------------------------------------------------ readiness

    def wait_ready(self, timeout: float = 3.0) -> None:
        """Poll until miniupnpd (HTTP rootDesc.xml from lan + a NAT-PMP answer) and knot
        (SOA) answer; raise LabError naming what is not ready, with the daemon's log tail."""
        daemons = {"miniupnpd": self._miniupnpd, "knotd": self._knot}
        probes.poll_ready(f"lab {self.tag}", self._pending_checks(), daemons, timeout)

    def _pending_checks(self) -> dict[str, Callable[[], bool]]:
        checks: dict[str, Callable[[], bool]] = {}
        if self.miniupnpd_pid is not None:
            port = self._router_cfg.http_port
            checks["miniupnpd HTTP"] = lambda: (
                self.call("lan", probes.http_get_status, self.gateway, port, "/rootDesc.xml") == 200
            )
            checks["miniupnpd NAT-PMP"] = lambda: self.call("lan", probes.natpmp_public_address, self.gateway) is not None
            if self._ipv6 is not None and self._router_cfg.ipv6_firewall_control:
                checks["miniupnpd HTTP over IPv6"] = lambda: (
                    self.call("lan", probes.http_get_status, self.gateway6, port, "/rootDesc.xml") == 200
                )
        if self.knot_pid is not None:
            checks["knot SOA"] = lambda: self.call("wan", probes.dns_soa_ok, self.dns_server, self.dns_port, self.zone)
        return checks

    # ------------------------------------------------------------------ running things

    def _exec_argv(self, host: str, argv: Sequence[str]) -> list[str]:
        return [tool("ip"), "netns", "exec", self.ns(host), *argv]

    def run(
        self,
        host: str,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 30,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in ``host``'s netns (text, captured). ``env`` is merged over os.environ.
        LabError on non-zero exit (with check) and on timeout (always)."""
        return run_cmd(self._exec_argv(host, argv), check=check, timeout=timeout, input=input, env=env)

    def popen(self, host: str, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start a background command in ``host``'s netns; stop() kills it if still running."""
        proc = subprocess.Popen(self._exec_argv(host, argv), **popen_kwargs)
        self._procs.append(proc)
        return proc

    @contextlib.contextmanager
    def netns(self, host: str) -> Iterator[None]:
        """Switch the calling thread into ``host``'s netns (sockets made inside stay there)."""
        with enter_netns(self.ns(host)):
            yield

    def call(self, host: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in a thread inside ``host``'s netns; return or re-raise."""
        return call_in_netns(self.ns(host), fn, *args, **kwargs)

    def tcp_service(self, host: str, port: int, banner: bytes = b"RDP-STANDIN\n", *, ipv6: bool = False) -> TcpService:
        """A TCP listener on 0.0.0.0:port (``ipv6``: [::]:port, IPv6 only) in ``host`` that sends ``banner``
        and closes."""
        service = TcpService(self.ns(host), port, banner, ipv6=ipv6).start()
        self._services.append(service)
        return service

    def tcp_banner(self, host: str, addr: str, port: int, timeout: float = 2.0) -> bytes:
        """Connect from ``host`` to addr:port and return what the server sent before closing.
        Raises ConnectionRefusedError / TimeoutError exactly as a real client would see."""
        return self.call(host, probes.tcp_read_banner, addr, port, timeout)
