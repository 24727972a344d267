"""Section loader for [[ddns]]: which keys an entry takes comes from the provider registry
(natlink/ddns/registry.py); this module only checks the values."""

from __future__ import annotations

import ipaddress
from typing import Any, Callable

from natlink import cleartext
from natlink.config.model import DdnsCfg
from natlink.config.problems import Loader
from natlink.config.section import SECRET_SUFFIXES, Section, did_you_mean, keys, shown, tables
from natlink.config.values import entry_name, hostname_ok
from natlink.ddns import registry


def ddns_entries(loader: Loader, data: Any) -> tuple[DdnsCfg, ...]:
    names: set[str] = set()
    known = keys(DdnsCfg) - {"options", "secrets", "line"} | {cleartext.ALLOW_KEY}
    found = [loader.guard(_ddns_entry, loader, s, names) for s in tables(loader, data, "ddns", known)]
    return tuple(e for e in found if e is not None)


def _ddns_entry(loader: Loader, s: Section, names: set[str]) -> DdnsCfg:
    name = entry_name(s, names)
    provider = s.string("provider", required=True)
    assert provider is not None
    schema = registry.get(provider)
    if schema is None:
        s.fail("provider", f"unknown provider {shown(provider)}; use one of {', '.join(registry.names())}"
               + did_you_mean(provider, registry.names()))
    assert schema is not None
    s.expect(set(schema.options) | keys(secrets=schema.secrets + schema.optional_secrets))
    hostnames = s.str_list("hostnames", required=True, nonempty=True)
    assert hostnames is not None
    for h in hostnames:
        if not hostname_ok(h):
            s.fail("hostnames", f"{shown(h)} is not a valid DNS name")
    options: dict[str, Any] = {}
    for key in schema.options:
        value = s.raw(key)
        if value is None:
            if key in schema.required:
                loader.fail(s.key(key), f"is required for provider {shown(provider)}", line_of=s.path)
            continue
        options[key] = _provider_option(s, key, value, schema.choices.get(key))
    secrets: dict[str, SecretRef] = {}
    for key in schema.secrets + schema.optional_secrets:
        ref = s.secret(key, required=key in schema.secrets)
        if ref is not None:
            secrets[key] = ref
    known_secret_keys = tuple(k + suf for k in schema.secrets + schema.optional_secrets for suf in SECRET_SUFFIXES)
    allow = s.no_cleartext("server", options.get("server") if secrets else None, f"the {provider} credentials")
    entry = DdnsCfg(name=name, provider=provider, hostnames=hostnames, options=options, secrets=secrets,
                    ipv4=s.boolean("ipv4", DdnsCfg.ipv4), ipv6=s.boolean("ipv6", DdnsCfg.ipv6),
                    keepalive=s.duration("keepalive", None), verify=s.boolean("verify", DdnsCfg.verify),
                    line=loader.locator.line(s.path), allow_insecure_http=allow)
    if not entry.ipv4 and not entry.ipv6:
        s.fail("ipv4", "ipv4 and ipv6 are both false: this entry would never update anything")
    s.finish(known_secret_keys)
    return entry


def _provider_option(s: Section, key: str, value: Any, choices: tuple[str, ...] | None = None) -> Any:
    validators: dict[str, Callable[[], Any]] = {
        "server": lambda: s.string(key),
        "port": lambda: s.port(key),
        "ttl": lambda: s.duration(key, None),
        "proxied": lambda: s.boolean(key, False),
        "tcp": lambda: s.boolean(key, False),
    }
    result = validators.get(key, lambda: s.string(key, choices=choices))()
    if key in ("server", "nameserver") and isinstance(result, str) and "://" not in result:
        try:
            ipaddress.ip_address(result)
        except ValueError:
            if not hostname_ok(result.split(":")[0]):
                s.fail(key, f"{shown(result)} is neither an address, a host name nor a URL")
    return result
