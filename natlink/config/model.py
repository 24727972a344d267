"""The typed settings: frozen dataclasses, one per config section, with their defaults.

Nothing here reads TOML; the section loaders (natlink/config/load_*.py) build these from a validated file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from natlink.secrets import SecretRef

PROTOCOLS = ("upnp", "natpmp", "pcp")
VIAS = ("reflector", "hairpin", "echoip")
PROBE_TIMEOUT_MAX = 60.0


@dataclass(frozen=True)
class RouterCfg:
    protocols: tuple[str, ...] = PROTOCOLS
    gateway: str | None = None  # None: the default route's gateway
    igd_url: str | None = None  # None: SSDP discovery (result cached in state)
    lan_ip: str = "auto"  # "auto": source address toward the gateway
    lease: int = 3600  # seconds; 0 = permanent; a [[mapping]] without its own lease gets this one
    timeout: float = 2.0  # how long to wait for a router before saying it is absent


@dataclass(frozen=True)
class MappingCfg:
    name: str
    protocol: str  # "tcp" | "udp"
    external_port: int
    internal_port: int
    internal_ip: str | None  # None: this host, router.lan_ip (resolved once, at run time, where "auto" is too)
    allow_other_port: bool = False  # accept another external port when the wanted one is taken
    lease: int = RouterCfg.lease  # requested seconds (0 = permanent); the loader puts [router] lease here when
    # the entry gives none, so every reader takes it as it is
    description: str = ""
    ipv6: bool | None = None  # open an IPv6 pinhole too; None: public_ip.ipv6 (Config.mapping_ipv6)
    ipv6_host: str | None = None  # interface identifier of another LAN host ("::201", "mac:..."); None: this host


@dataclass(frozen=True)
class PublicIpCfg:
    sources: tuple[str, ...] = ("router", "https://api.ipify.org", "https://ipv4.icanhazip.com")
    ipv6: bool = False
    quorum: int = 0  # 0: all answering sources must agree; N: at least N agreeing sources
    timeout: float = 3.0


@dataclass(frozen=True)
class DdnsCfg:
    name: str
    provider: str
    hostnames: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)  # provider keys (server, zone, username, ttl, ...)
    secrets: dict[str, SecretRef] = field(default_factory=dict)  # e.g. {"password": SecretRef("file", ...)}
    ipv4: bool = True
    ipv6: bool = False
    keepalive: int | None = None  # seconds; None: provider default (0 = never)
    verify: bool = True
    line: int = 0
    allow_insecure_http: bool = False  # credentials may go to a non-loopback http:// server (warned every run)

    def config_hash_items(self) -> dict[str, Any]:
        """What, when changed, makes the next run push an update (no secret values, only their sources)."""
        return {
            "provider": self.provider, "hostnames": list(self.hostnames), "options": self.options,
            "secrets": {k: f"{v.kind}:{v.name}" for k, v in sorted(self.secrets.items())},
            "ipv4": self.ipv4, "ipv6": self.ipv6,
        }


@dataclass(frozen=True)
class ProbeCfg:
    name: str
    mapping: str | None  # a [[mapping]] name
    target: str | None  # "host:port" when not a mapping
    via: str
    reflector: str | None = None
    echoip: str | None = None
    token: SecretRef | None = None  # shared reflector token
    timeout: float = 3.0
    protocol: str = "tcp"
    allow_insecure_http: bool = False  # the token may go to a non-loopback http:// reflector (warned every run)


@dataclass(frozen=True)
class ScheduleCfg:
    mappings: int = 600
    ddns: int = 300
    probe: int = 900
    public_ip: int = 60  # cheap poll of the router's external address (events come first)
    jitter: int = 10


@dataclass(frozen=True)
class AlertsCfg:
    webhook: str | None = None
    command: tuple[str, ...] | None = None
    min_interval: int = 600
    heartbeat: str | None = None  # push URL (Healthchecks.io / Uptime Kuma): pinged while healthy, /fail when not


@dataclass(frozen=True)
class ServiceCfg:
    state_dir: str = "/var/lib/natlink"
    unmap_on_stop: bool = False
    metrics: str | None = None  # "127.0.0.1:9877"
    web: str | None = None  # status page, "127.0.0.1:9878" (natlink/web/)
    web_password: SecretRef | None = None  # required when web binds to a non-loopback address
    alerts: AlertsCfg = field(default_factory=AlertsCfg)
    hung_job: int = 300  # a job running longer is taken as hung: the watchdog pings stop and systemd restarts us


@dataclass(frozen=True)
class DoctorCfg:
    expected_connections: int = 1000
    nat_timeout_max: int = 600


@dataclass(frozen=True)
class Config:
    path: Path | None
    router: RouterCfg = field(default_factory=RouterCfg)
    mappings: tuple[MappingCfg, ...] = ()
    public_ip: PublicIpCfg = field(default_factory=PublicIpCfg)
    ddns: tuple[DdnsCfg, ...] = ()
    probes: tuple[ProbeCfg, ...] = ()
    schedule: ScheduleCfg = field(default_factory=ScheduleCfg)
    service: ServiceCfg = field(default_factory=ServiceCfg)
    doctor: DoctorCfg = field(default_factory=DoctorCfg)

    def mapping(self, name: str) -> MappingCfg | None:
        return next((m for m in self.mappings if m.name == name), None)

    def mapping_ipv6(self, m: MappingCfg) -> bool:
        """Does this mapping get an IPv6 pinhole? Its own ``ipv6``, else ``public_ip.ipv6``."""
        return self.public_ip.ipv6 if m.ipv6 is None else m.ipv6
