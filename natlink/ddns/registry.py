"""The one table of DDNS providers: config schema, presets, keep-alive, etiquette and IPv4/IPv6 rule per provider.

config/load_ddns.py asks it which keys an entry takes, the updater asks it for defaults and the factory; nothing else
keeps a list of providers. Importing this module imports no provider module (they load when an entry uses one).

Adding a provider is one module plus one entry here:

1. Write ``natlink/ddns/<name>.py`` with a class deriving ``natlink.ddns.base.Provider``. Implement
   ``update_name(hostname, addresses)`` (one name; the base loops over ``self.hostnames`` and stops at an
   entry-wide fatal answer) or override ``update(addresses)`` when one request carries several names. Map
   every documented answer to ``base.success / fatal / transient`` (``per_name=True`` on a fatal answer that
   concerns only that name, e.g. "no such host"), pass any echoed text through ``self.safe()`` so no secret
   reaches a message, and read options with ``self.option(key)`` and protocol constants with
   ``self.preset(key)``. Override ``verify()`` only when the provider has a better read-back than DNS (the
   default asks the zone's authoritative name server).
2. Add a ``ProviderSpec`` to ``_SPECS`` below: ``factory="natlink.ddns.<name>:<Class>"``, the option and
   secret keys (secrets are configured as ``<key>_file`` / ``_env`` / ``_credential``), the ``families`` rule,
   and any documented keep-alive or minimum interval. Then a row in README's provider table, an example in
   config.example.toml, and tests against a strict local server (tests/unit/test_ddns_fakes.py has some).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from natlink.ddns.base import Provider
    from natlink.secrets import Secret

# How a provider takes A and AAAA for one name:
TOGETHER = "together"  # one request carries both (dyndns2 myip=v4,v6; DuckDNS ip=&ipv6=; one DNS UPDATE)
SEPARATE = "separate"  # one request per family (HE.net, API record by record); unchanged families are not resent
IPV4_ONLY = "ipv4-only"  # the provider has no AAAA support
FAMILY_RULES = (TOGETHER, SEPARATE, IPV4_ONLY)

DAY = 86400


@dataclass(frozen=True)
class ProviderSpec:
    """Everything natlink knows about one provider, apart from its protocol code."""

    name: str  # the `provider = "..."` value
    label: str  # for messages: "No-IP", "Hurricane Electric"
    factory: str  # "module:Class", imported only when an entry uses the provider
    required: tuple[str, ...] = ()  # option keys
    optional: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()  # all required
    optional_secrets: tuple[str, ...] = ()
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # option -> allowed string values
    preset: Mapping[str, Any] = field(default_factory=dict)  # protocol constants (server, path, parameters)
    families: str = TOGETHER
    keepalive: int = 0  # default keep-alive age in seconds; 0 = never push an unchanged address
    min_interval: int = 0  # the provider's documented minimum time between two updates (0 = none documented)
    verify_server_option: str | None = None  # option naming the authoritative server itself (rfc2136: server)

    @property
    def options(self) -> tuple[str, ...]:
        return self.required + self.optional + COMMON_OPTIONS

    @property
    def supports_ipv6(self) -> bool:
        return self.families != IPV4_ONLY

    def family_rule(self, options: Mapping[str, Any]) -> str:
        """The entry's rule: a `families` option (where the provider takes one) overrides the provider's."""
        value = options.get("families")
        return value if value in FAMILY_RULES else self.families

    def make(self, entry: Any, secrets: dict[str, "Secret"], **kwargs: Any) -> "Provider":
        module, _, cls = self.factory.partition(":")
        return getattr(importlib.import_module(module), cls)(entry, secrets, spec=self, **kwargs)


# Keys every provider takes: where to ask for the live record (default: the zone's NS found via DNS).
COMMON_OPTIONS = ("nameserver",)

_DYNDNS2 = "natlink.ddns.dyndns2:Dyndns2Provider"
_USER_PW = dict(secrets=("password",))

_SPECS = (
    ProviderSpec("dyndns2", "dyndns2 server", _DYNDNS2, required=("server",), optional=("username", "families"),
                 choices={"families": (TOGETHER, SEPARATE)}, **_USER_PW,
                 preset={"path": "/nic/update", "ipv6": "myip", "username_is_hostname": True}),
    # No-IP: hosts of free accounts expire unless confirmed every 30 days, hence the 25-day keep-alive.
    ProviderSpec("noip", "No-IP", _DYNDNS2, required=("username",), optional=("server",), **_USER_PW,
                 preset={"server": "https://dynupdate.no-ip.com", "path": "/nic/update", "ipv6": "myipv6"},
                 keepalive=25 * DAY),
    ProviderSpec("oray", "Oray", _DYNDNS2, required=("username",), optional=("server",), **_USER_PW,
                 preset={"server": "https://ddns.oray.com", "path": "/ph/update", "ipv6": None},
                 families=IPV4_ONLY),
    ProviderSpec("dynu", "Dynu", _DYNDNS2, required=("username",), optional=("server",), **_USER_PW,
                 preset={"server": "https://api.dynu.com", "path": "/nic/update", "ipv6": "myipv6"}),
    # HE.net: username = the hostname, password = that host's own key; myip takes one address per request.
    ProviderSpec("he", "Hurricane Electric", _DYNDNS2, optional=("username", "server"), **_USER_PW,
                 preset={"server": "https://dyn.dns.he.net", "path": "/nic/update", "ipv6": "myip",
                         "username_is_hostname": True}, families=SEPARATE),
    # OVH DynHost: dyndns2 plus system=dyndns; DynHost records are A records only.
    ProviderSpec("ovh", "OVH DynHost", _DYNDNS2, required=("username",), optional=("server",), **_USER_PW,
                 preset={"server": "https://www.ovh.com", "path": "/nic/update", "ipv6": None,
                         "extra": {"system": "dyndns"}}, families=IPV4_ONLY),
    # Strato: username = the domain, password = its DynDNS password; myip=v4,v6 sets both.
    ProviderSpec("strato", "Strato", _DYNDNS2, required=("username",), optional=("server",), **_USER_PW,
                 preset={"server": "https://dyndns.strato.com", "path": "/nic/update", "ipv6": "myip"}),
    # easyDNS: one update per name every 10 minutes (sooner: TOOSOON), one address per request.
    ProviderSpec("easydns", "easyDNS", "natlink.ddns.easydns:EasydnsProvider", required=("username",),
                 optional=("server",), **_USER_PW, families=SEPARATE, min_interval=600,
                 preset={"server": "https://members.easydns.com", "path": "/dyn/dyndns.php", "ipv6": "myip"}),
    ProviderSpec("namecheap", "Namecheap", "natlink.ddns.namecheap:NamecheapProvider", required=("domain",),
                 optional=("server",), **_USER_PW,
                 preset={"server": "https://dynamicdns.park-your-domain.com"}, families=IPV4_ONLY),
    # FreeDNS: every record has its own update token (token: the A record, token_v6: the AAAA record).
    ProviderSpec("freedns", "FreeDNS", "natlink.ddns.freedns:FreednsProvider", optional=("server",),
                 optional_secrets=("token", "token_v6"), families=SEPARATE,
                 preset={"server": "https://sync.afraid.org", "server_v6": "https://v6.sync.afraid.org"}),
    ProviderSpec("cloudflare", "Cloudflare", "natlink.ddns.cloudflare:CloudflareProvider",
                 optional=("zone", "ttl", "proxied", "server"), secrets=("api_token",), families=SEPARATE),
    ProviderSpec("duckdns", "DuckDNS", "natlink.ddns.duckdns:DuckdnsProvider", optional=("server",),
                 secrets=("token",), preset={"zone_suffix": "duckdns.org"}),
    # rfc2136 takes `tsig_key_file` (a BIND/knot key file); it is a secret source like the others.
    ProviderSpec("rfc2136", "RFC 2136", "natlink.ddns.rfc2136:Rfc2136Provider", required=("server",),
                 optional=("port", "zone", "ttl", "tcp", "tsig_algorithm"), optional_secrets=("tsig_key",),
                 verify_server_option="server"),
    # DNS-record APIs (natlink/ddns/recordapi.py): one read, and a write only when needed, per name and family.
    ProviderSpec("alidns", "AliDNS", "natlink.ddns.alidns:AlidnsProvider", required=("access_key_id",),
                 optional=("zone", "ttl", "server"), secrets=("access_key_secret",), families=SEPARATE),
    ProviderSpec("dnspod", "DNSPod", "natlink.ddns.dnspod:DnspodProvider", required=("secret_id",),
                 optional=("zone", "ttl", "record_line", "server"), secrets=("secret_key",), families=SEPARATE),
    ProviderSpec("desec", "deSEC", "natlink.ddns.desec:DesecProvider", optional=("zone", "ttl", "server"),
                 secrets=("token",), families=SEPARATE),
    ProviderSpec("porkbun", "Porkbun", "natlink.ddns.porkbun:PorkbunProvider", optional=("zone", "ttl", "server"),
                 secrets=("api_key", "secret_api_key"), families=SEPARATE),
    ProviderSpec("gandi", "Gandi LiveDNS", "natlink.ddns.gandi:GandiProvider",
                 optional=("zone", "ttl", "auth_scheme", "server"), secrets=("token",),
                 choices={"auth_scheme": ("bearer", "apikey")}, families=SEPARATE),
    ProviderSpec("digitalocean", "DigitalOcean", "natlink.ddns.digitalocean:DigitaloceanProvider",
                 optional=("zone", "ttl", "server"), secrets=("token",), families=SEPARATE),
)

PROVIDERS: Mapping[str, ProviderSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})


def plan(spec: ProviderSpec, options: Mapping[str, Any], ipv4: bool, ipv6: bool, verify: bool) -> str:
    """What natlink will do for an entry of this provider, in words (for check-config)."""
    rule = spec.family_rule(options)
    families = [f for f, on in (("A", ipv4), ("AAAA", ipv6 and rule != IPV4_ONLY)) if on]
    parts = [" and ".join(families) or "nothing"]
    if ipv6 and rule == IPV4_ONLY:
        parts.append(f"no AAAA ({spec.label} takes IPv4 only)")
    elif len(families) == 2:
        parts.append("one request for both" if rule == TOGETHER else "one request per family")
    if verify:
        where = options.get("nameserver") or (spec.verify_server_option and options.get(spec.verify_server_option))
        parts.append(f"live record from {where}" if where else "live record from the zone's name servers")
    else:
        parts.append("live record not checked (verify = false)")
    if spec.min_interval:
        from natlink.durations import format_duration  # only for this sentence
        parts.append(f"at most one update per {format_duration(spec.min_interval)}")
    return "; ".join(parts)


def get(name: str) -> ProviderSpec | None:
    return PROVIDERS.get(name)


def names() -> tuple[str, ...]:
    return tuple(PROVIDERS)
