"""TOML text -> Config: the syntax check, then each section's loader; all problems are raised together."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Callable

from natlink.config import load_router, load_service
from natlink.config.model import Config, DoctorCfg, PublicIpCfg, RouterCfg, ScheduleCfg, ServiceCfg
from natlink.config.problems import Loader
from natlink.config.section import Section, did_you_mean, keys
from natlink.errors import ConfigError


def parse_config(text: str, path: Path | None = None, *, check_secrets: bool = True) -> Config:
    text = text.removeprefix("\ufeff")  # a byte-order mark (Notepad) is not a TOML error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = path.name if path else "config"
        raise ConfigError(f"{where}:{line.group(1) if line else 0}: not valid TOML: {exc}",
                          "fix the syntax (strings need quotes, tables are [name], lists of tables [[name]])") from None
    loader = Loader(path, text, check_secrets)
    known_tables = ("router", "mapping", "public_ip", "ddns", "probe", "schedule", "service", "doctor")
    for name in data:
        if name not in known_tables:
            loader.note(name, "unknown section" + did_you_mean(name, known_tables), unknown=True)

    def table(name: str, known: set[str]) -> Section | None:
        return loader.guard(Section, loader, data.get(name, {}), name, known)

    def section(fn: Callable[..., Any], name: str, known: set[str], default: Any, *extra: Any) -> Any:
        s = table(name, known)
        return default if s is None else loader.guard(fn, *extra, s, default=default)

    router = section(load_router.router, "router", keys(RouterCfg), RouterCfg())
    mappings = load_router.mappings(loader, data.get("mapping", []), router)
    public_ip = section(load_router.public_ip, "public_ip", keys(PublicIpCfg), PublicIpCfg())
    ddns = _ddns(loader, data)
    probes = _probes(loader, data, mappings)
    schedule = section(load_service.schedule, "schedule", keys(ScheduleCfg), ScheduleCfg())
    service = section(load_service.service, "service", keys(ServiceCfg, secrets=("web_password",)), ServiceCfg(), loader)
    doctor = section(load_service.doctor, "doctor", keys(DoctorCfg), DoctorCfg())
    loader.raise_problems()
    return Config(path=path, router=router, mappings=mappings, public_ip=public_ip, ddns=ddns, probes=probes,
                  schedule=schedule, service=service, doctor=doctor)


# A config without [[ddns]] / [[probe]] has nothing for their loaders to check: they (and the DDNS provider
# registry) are imported only for a config that has such entries, which keeps them off `natlink map`'s start-up.

def _ddns(loader: Loader, data: dict[str, Any]) -> tuple[Any, ...]:
    if "ddns" not in data:
        return ()
    from natlink.config import load_ddns

    return load_ddns.ddns_entries(loader, data["ddns"])


def _probes(loader: Loader, data: dict[str, Any], mappings: tuple[Any, ...]) -> tuple[Any, ...]:
    if "probe" not in data:
        return ()
    from natlink.config import load_probe

    return load_probe.probes(loader, data["probe"], mappings)
