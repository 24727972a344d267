"""The lab's DNS server: knotd on the WAN host, accepting RFC 2136 updates signed with TSIG.

It stands in for a DDNS provider that speaks plain DNS UPDATE. Everything (config, zone,
journal, timers, control socket) lives in the lab's workdir, and knotd runs as root
(``server: user: root:root``) because otherwise it drops privileges and cannot write there.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
from dataclasses import dataclass, field

from natlink.lab.prereq import tool
from natlink.lab.procs import Daemon


@dataclass(frozen=True)
class TsigKey:
    name: str
    algorithm: str = "hmac-sha256"
    secret: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode())

    def bind_format(self) -> str:
        """``key "name" { algorithm ...; secret "..."; };`` — readable by knot, BIND, dnspython."""
        return f'key "{self.name}" {{\n\talgorithm {self.algorithm};\n\tsecret "{self.secret}";\n}};\n'

    def knot_format(self) -> str:
        """``algorithm:name:secret`` — what kdig/knsupdate accept for -y and in a -k file."""
        return f"{self.algorithm}:{self.name}:{self.secret}"


def zone_text(zone: str, ns_ip: str) -> str:
    """A minimal zone: SOA, NS and the name server's address — nothing else on purpose."""
    return f"""\
$ORIGIN {zone}.
$TTL 60
@   SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60
@   NS  ns.{zone}.
ns  A   {ns_ip}
"""


def knot_conf(*, workdir: str, listen_ip: str, port: int, zone: str, key: TsigKey,
              extra_zones: tuple[str, ...] = ()) -> str:
    knotdir = os.path.join(workdir, "knot")
    zones = "".join(
        f"""\
  - domain: {name}
    storage: "{knotdir}"
    file: "{name}.zone"
    acl: natlink-update
    zonefile-sync: -1
    journal-content: changes
"""
        for name in (zone, *extra_zones)
    )
    return f"""\
server:
    rundir: "{knotdir}"
    user: root:root
    pidfile: "{knotdir}/knot.pid"
    listen: {listen_ip}@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

database:
    storage: "{knotdir}"
    journal-db-max-size: 64M
    kasp-db-max-size: 16M
    timer-db-max-size: 16M
    catalog-db-max-size: 16M

control:
    listen: "{knotdir}/knot.sock"

log:
  - target: stderr
    any: info

key:
  - id: {key.name}
    algorithm: {key.algorithm}
    secret: {key.secret}

acl:
  - id: natlink-update
    key: {key.name}
    action: update

zone:
{zones}"""


@dataclass
class Knot(Daemon):
    """knotd in the foreground as a tracked child of the lab."""

    stem = "knot"

    ns: str
    workdir: str
    listen_ip: str
    port: int
    zone: str
    key: TsigKey
    extra_zones: tuple[str, ...] = ()  # more zones served the same way (e.g. a user's DDNS names in the demo)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def key_file(self) -> str:
        return os.path.join(self.workdir, "tsig.key")

    @property
    def knot_key_file(self) -> str:
        return os.path.join(self.workdir, "tsig.knot-key")

    def write_files(self) -> None:
        knotdir = os.path.join(self.workdir, "knot")
        os.makedirs(knotdir, exist_ok=True)
        for zone in (self.zone, *self.extra_zones):
            with open(os.path.join(knotdir, f"{zone}.zone"), "w", encoding="ascii") as fh:
                fh.write(zone_text(zone, self.listen_ip))
        with open(self.conf_path, "w", encoding="ascii") as fh:
            fh.write(
                knot_conf(workdir=self.workdir, listen_ip=self.listen_ip, port=self.port, zone=self.zone, key=self.key,
                          extra_zones=self.extra_zones)
            )
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(self.key.bind_format())
        fd = os.open(self.knot_key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(self.key.knot_format() + "\n")

    def start(self) -> None:
        if self.pid is not None:
            return
        self.write_files()
        self.launch([tool("ip"), "netns", "exec", self.ns, tool("knotd"), "-c", self.conf_path])
