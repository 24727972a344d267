"""The provider registry is the only table of providers: every entry loads, config takes exactly its keys."""

from __future__ import annotations

import importlib

import pytest

from natlink.config import parse_config
from natlink.ddns import registry
from natlink.ddns.base import Provider
from natlink.errors import ConfigError


@pytest.mark.parametrize("name", registry.names())
def test_every_factory_is_a_provider(name: str) -> None:
    spec = registry.PROVIDERS[name]
    module, _, cls = spec.factory.partition(":")
    assert issubclass(getattr(importlib.import_module(module), cls), Provider)
    assert spec.families in registry.FAMILY_RULES
    assert set(spec.choices) <= set(spec.options)
    assert not set(spec.secrets) & set(spec.optional_secrets)


def _entry(name: str, body: str) -> str:
    spec = registry.PROVIDERS[name]
    lines = [f'[[ddns]]\nname = "e"\nprovider = "{name}"\nhostnames = ["a.example.org"]']
    lines += [f'{key} = "x.example.org"' for key in spec.required]
    lines += [f'{key}_env = "SECRET_{key.upper()}"' for key in spec.secrets]
    return "\n".join(lines) + "\n" + body


@pytest.mark.parametrize("name", registry.names())
def test_config_takes_the_registry_keys(name: str) -> None:
    (entry,) = parse_config(_entry(name, "")).ddns
    assert entry.provider == name and set(entry.secrets) == set(registry.PROVIDERS[name].secrets)
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(_entry(name, 'not_a_key = "1"\n'))


def test_choices_are_checked() -> None:
    cfg = parse_config(_entry("dyndns2", 'families = "separate"\n'))
    assert registry.PROVIDERS["dyndns2"].family_rule(cfg.ddns[0].options) == registry.SEPARATE
    with pytest.raises(ConfigError, match="is not one of together, separate"):
        parse_config(_entry("dyndns2", 'families = "both"\n'))


def test_unknown_provider_names_the_registry() -> None:
    with pytest.raises(ConfigError, match="did you mean 'strato'"):
        parse_config('[[ddns]]\nname = "e"\nprovider = "stratoo"\nhostnames = ["a.example"]\n')


@pytest.mark.parametrize("name, body, words", [
    ("he", "ipv6 = true\n", "A and AAAA; one request per family; live record from the zone's name servers"),
    ("strato", "ipv6 = true\nverify = false\n", "A and AAAA; one request for both; live record not checked (verify = false)"),
    ("ovh", "ipv6 = true\n", "A; no AAAA (OVH DynHost takes IPv4 only); live record from the zone's name servers"),
    ("easydns", 'nameserver = "11.0.0.1"\n', "A; live record from 11.0.0.1; at most one update per 10m"),
    ("rfc2136", "", "A; live record from x.example.org"),
])
def test_plan_sentence(name: str, body: str, words: str) -> None:
    (entry,) = parse_config(_entry(name, body)).ddns
    assert registry.plan(registry.PROVIDERS[name], entry.options, entry.ipv4, entry.ipv6, entry.verify) == words
