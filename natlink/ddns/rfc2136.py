"""RFC 2136 DNS UPDATE signed with TSIG (dnspython), for BIND, knot, PowerDNS and friends.

One UPDATE per entry replaces each name's A/AAAA RRset (delete the RRset, add the address) atomically.
The zone comes from the `zone` option or an SOA lookup at the server; UDP falls back to TCP when the
answer is truncated (`tcp = true` forces TCP). The key comes from tsig_key_file in BIND/knot format.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update

from natlink.ddns.base import Provider, ProviderResult, fatal, success, transient
from natlink.hostport import parse_server
from natlink.secrets import Secret

log = logging.getLogger(__name__)

RTYPE = {4: "A", 6: "AAAA"}
DEFAULT_TTL = 60
ALGORITHMS = ("hmac-sha256", "hmac-sha512", "hmac-sha384", "hmac-sha224", "hmac-sha1", "hmac-md5")


@dataclass(frozen=True)
class TsigKey:
    name: str
    algorithm: str
    secret: Secret  # base64 text


class KeyFileError(ValueError):
    """The key file could not be understood; the message never contains the secret."""


_BIND = re.compile(r'key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;?', re.S)
_BIND_FIELD = re.compile(r'(algorithm|secret)\s+"?([^";\s]+)"?\s*;')
_LINE = re.compile(r"^(?:#\s*)?(hmac-[a-z0-9]+):([^:\s]+):([A-Za-z0-9+/=]+)\s*$", re.M)
_YAML = re.compile(r"^\s*-?\s*(id|algorithm|secret)\s*:\s*\"?([^\"\s#]+)\"?", re.M)


def parse_tsig_key(text: str, source: str = "the key file", algorithm_override: str | None = None) -> TsigKey:
    """BIND (`key "n" { algorithm a; secret "s"; };`), knot YAML (`key: - id/algorithm/secret`) or the
    `alg:name:secret` line knsupdate/kdig take."""
    name = algorithm = secret = None
    m = _BIND.search(text)
    if m:
        name = m.group(1)
        fields = dict(_BIND_FIELD.findall(m.group(2)))
        algorithm, secret = fields.get("algorithm"), fields.get("secret")
    elif (line := _LINE.search(text)) is not None:
        algorithm, name, secret = line.group(1), line.group(2), line.group(3)
    else:
        fields = dict(_YAML.findall(text))
        name, algorithm, secret = fields.get("id"), fields.get("algorithm"), fields.get("secret")
    if not name or not secret:
        raise KeyFileError(f"{source} is not a TSIG key in BIND format (key \"name\" {{ algorithm hmac-sha256; "
                           "secret \"...\"; };), knot format (key: - id/algorithm/secret) or alg:name:secret")
    algorithm = (algorithm_override or algorithm or "hmac-sha256").lower().rstrip(".")
    if algorithm not in ALGORITHMS:
        raise KeyFileError(f"{source}: unknown TSIG algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
    try:
        base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{source}: the key's secret is not valid base64") from None
    return TsigKey(name.rstrip("."), algorithm, Secret(secret, source))


def classify_rcode(rcode: int, zone: str) -> ProviderResult:
    """Map the server's answer code to a typed outcome (pure)."""
    text = dns.rcode.to_text(rcode)
    if rcode == dns.rcode.NOERROR:
        return success("good", "updated")
    if rcode == dns.rcode.NOTAUTH:
        return fatal("notauth", f"the DNS server answered NOTAUTH: it does not accept this TSIG key for zone {zone} "
                                "(wrong key name, secret or algorithm, or the server's ACL lacks `update` for it); "
                                "fix tsig_key_file")
    if rcode == dns.rcode.REFUSED:
        return fatal("refused", f"the DNS server REFUSED the update of zone {zone}: its ACL does not allow this key "
                                "to update (knot: acl action: update; BIND: update-policy)")
    if rcode == dns.rcode.NOTZONE:
        return fatal("notzone", f"a hostname is not inside zone {zone}; fix zone or hostnames")
    if rcode == dns.rcode.SERVFAIL:
        return transient("servfail", "the DNS server answered SERVFAIL; natlink retries later")
    return fatal(text.lower(), f"the DNS server rejected the update ({text}); check the entry's hostnames and zone")


class Rfc2136Provider(Provider):
    name = "rfc2136"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        server = str(self.option("server"))
        self.server_name, port = parse_server(server, 53)
        self.port = int(self.option("port") or port)
        self.key: TsigKey | None = None
        if "tsig_key" in self.secrets:
            ref = self.entry.secrets["tsig_key"]
            self.key = parse_tsig_key(self.secrets["tsig_key"].value, f"tsig_key {ref.describe()}",
                                      self.option("tsig_algorithm"))
        self._address: str | None = None
        self.sent = 0  # DNS messages sent (queries and updates)

    @property
    def requests_sent(self) -> int:
        return self.sent

    # -- helpers -----------------------------------------------------------------------------------

    def address(self) -> str:
        if self._address is None:
            try:
                ipaddress.ip_address(self.server_name)
                self._address = self.server_name
            except ValueError:
                info = socket.getaddrinfo(self.server_name, self.port, type=socket.SOCK_DGRAM)
                self._address = str(info[0][4][0])
        return self._address

    def _send(self, msg: dns.message.Message) -> dns.message.Message:
        self.sent += 1
        if self.option("tcp"):
            return dns.query.tcp(msg, self.address(), timeout=self.timeout, port=self.port)
        response, used_tcp = dns.query.udp_with_fallback(msg, self.address(), timeout=self.timeout, port=self.port)
        if used_tcp:
            log.debug("answer was truncated; repeated over TCP")
        return response

    def find_zone(self, hostname: str) -> str:
        """The zone holding hostname: ask the server itself for the SOA (answer or authority section)."""
        configured = self.option("zone")
        if configured:
            return str(configured).rstrip(".")
        name = dns.name.from_text(hostname)
        while len(name.labels) > 1:
            response = self._send(dns.message.make_query(name, dns.rdatatype.SOA))
            for section in (response.answer, response.authority):
                for rrset in section:
                    if rrset.rdtype == dns.rdatatype.SOA:
                        return rrset.name.to_text(omit_final_dot=True)
            name = name.parent()
        raise LookupError(f"the DNS server {self.server_name} is not authoritative for any zone above {hostname}; "
                          "set zone = \"...\" or fix server")

    # -- Provider ----------------------------------------------------------------------------------

    def update(self, addresses: dict[int, str]) -> ProviderResult:
        where = f"{self.server_name}:{self.port}"
        try:
            zones: dict[str, list[str]] = {}
            for hostname in self.hostnames:
                zones.setdefault(self.find_zone(hostname), []).append(hostname)
            results = []
            for zone, names in zones.items():
                result = self._update_zone(zone, names, addresses)
                if result.kind != "success":
                    return result
                results.append(f"{', '.join(names)}: updated ({', '.join(addresses.values())})")
            return success("good", "; ".join(results))
        except LookupError as exc:
            return fatal("nozone", str(exc))
        except dns.exception.Timeout:
            return transient("timeout", f"the DNS server {where} did not answer within {self.timeout:g}s; "
                                        "natlink retries later")
        except dns.tsig.PeerBadTime:
            return transient("badtime", f"the DNS server {where} answered BADTIME: the clocks differ by more than "
                                        "the TSIG fudge; fix the time (NTP) on this host or the server")
        except dns.tsig.PeerBadKey:
            key = self.key.name if self.key else "?"
            return fatal("badkey", f"the DNS server {where} does not know TSIG key {key!r} with algorithm "
                                   f"{self.key.algorithm if self.key else '?'} (BADKEY); fix the key name or "
                                   "algorithm in tsig_key_file")
        except (dns.tsig.PeerBadSignature, dns.tsig.PeerBadTruncation) as exc:
            code = "BADSIG" if isinstance(exc, dns.tsig.PeerBadSignature) else "BADTRUNC"
            return fatal(code.lower(), f"the DNS server {where} rejected the TSIG signature ({code}): the key's "
                                       "secret differs from the server's; fix tsig_key_file")
        except (dns.message.UnknownTSIGKey, dns.tsig.BadSignature, dns.message.BadTSIG) as exc:
            return fatal("tsig", f"the answer from {where} is not signed with our key ({exc.__class__.__name__}); "
                                 "check tsig_key_file and the server's key")
        except (OSError, dns.exception.DNSException) as exc:
            reason = getattr(exc, "strerror", None) or exc.__class__.__name__
            return transient("network", self.safe(f"cannot reach the DNS server {where} ({reason}); natlink "
                                                  "retries later"))

    def _update_zone(self, zone: str, names: list[str], addresses: dict[int, str]) -> ProviderResult:
        kwargs = {}
        if self.key is not None:
            kwargs = {"keyring": dns.tsig.Key(self.key.name, self.key.secret.value, self.key.algorithm)}
        msg = dns.update.UpdateMessage(zone, **kwargs)
        ttl = int(self.option("ttl") or DEFAULT_TTL)
        for hostname in names:
            name = dns.name.from_text(hostname)
            for family, ip in sorted(addresses.items()):
                msg.delete(name, RTYPE[family])
                msg.add(name, ttl, RTYPE[family], ip)
        response = self._send(msg)
        return classify_rcode(response.rcode(), zone)

    def verify(self, addresses: dict[int, str]) -> str | None:
        """Ask the authoritative server itself: does each name now resolve to exactly what we sent?"""
        for hostname in self.hostnames:
            for family, ip in addresses.items():
                try:
                    response = self._send(dns.message.make_query(hostname, RTYPE[family]))
                except (OSError, dns.exception.DNSException) as exc:
                    return f"could not query {hostname} at {self.server_name}: {exc.__class__.__name__}"
                got = sorted({rd.to_text() for rrset in response.answer
                              if rrset.rdtype == dns.rdatatype.from_text(RTYPE[family]) for rd in rrset})
                if got != [ip]:
                    return (f"{hostname} {RTYPE[family]} at {self.server_name} is {', '.join(got) or 'missing'}, "
                            f"not {ip}")
        return None
