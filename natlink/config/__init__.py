"""Read the TOML config and turn it into validated, typed settings in one place.

Every problem is reported as `file:line: key.path: what is wrong (how to fix it)`, exit code 2.
The stages: model (the typed settings), files (finding and reading the file), parse (TOML -> Config),
locator / section / problems (line numbers, one table's checks, error collection) and one loader per
section family (load_router, load_ddns, load_probe, load_service). Which keys a DDNS provider takes lives
in the provider registry (natlink/ddns/registry.py).
"""

from natlink.config.files import (DEFAULT_PATHS, MAX_CONFIG_BYTES, default_config, find_config_path, load_config,
                                  read_config_text)
from natlink.config.load_service import default_state_dir
from natlink.config.model import (PROBE_TIMEOUT_MAX, PROTOCOLS, VIAS, AlertsCfg, Config, DdnsCfg, DoctorCfg,
                                  MappingCfg, ProbeCfg, PublicIpCfg, RouterCfg, ScheduleCfg, ServiceCfg)
from natlink.config.parse import parse_config
from natlink.config.problems import MAX_PROBLEMS
from natlink.config.section import shown
from natlink.hostport import parse_target

__all__ = [
    "DEFAULT_PATHS", "MAX_CONFIG_BYTES", "MAX_PROBLEMS", "PROBE_TIMEOUT_MAX", "PROTOCOLS", "VIAS", "AlertsCfg",
    "Config", "DdnsCfg", "DoctorCfg", "MappingCfg", "ProbeCfg", "PublicIpCfg", "RouterCfg", "ScheduleCfg",
    "ServiceCfg", "default_config", "default_state_dir", "find_config_path", "load_config", "parse_config",
    "parse_target", "read_config_text", "shown",
]
