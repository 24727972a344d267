"""A first look before any config exists (no -c, no $NATLINK_CONFIG, nothing in the standard places): on the
lab's LAN host `natlink mappings` shows the router, its external address and connection status like `upnpc -l`,
and `mappings`/`doctor` say they used the defaults. Such a run owns nothing and writes no state (STATE_DIRECTORY
points at a directory that must never appear)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from natlink.config import DEFAULT_PATHS

pytestmark = pytest.mark.lab


@pytest.fixture
def no_config(tmp_path: Path) -> dict[str, str]:
    if any(p.expanduser().exists() for p in DEFAULT_PATHS):
        pytest.fail(f"this machine has a config in {DEFAULT_PATHS}: the first-look test needs none")
    env = {"HOME": str(tmp_path / "home"), "STATE_DIRECTORY": str(tmp_path / "state")}
    os.environ.pop("NATLINK_CONFIG", None)
    return env


def natlink(lab, env: dict[str, str], *args: str):
    run_env = {**os.environ, **env}
    run_env.pop("NATLINK_CONFIG", None)
    return lab.run("lan", [sys.executable, "-m", "natlink", *args], check=False, timeout=30, env=run_env)


def test_mappings_without_config_shows_router_address_and_status(lab, no_config) -> None:
    r = natlink(lab, no_config, "mappings")
    assert r.returncode == 0, r.stderr
    assert "no config file, so the defaults: lan_ip auto, protocols upnp, natpmp, pcp" in r.stderr
    assert "`natlink init`" in r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("router:") and "UPnP IGD at http://10.0.1.1" in lines[0]
    assert lines[1].split() == ["external", "address:", lab.wan_ip]
    assert re.fullmatch(r"connection: +Connected(, up .+)?", lines[2]), lines[2]
    doc = json.loads(natlink(lab, no_config, "--json", "mappings").stdout)
    assert doc["external_ip"] == lab.wan_ip and doc["connection"]["status"] == "Connected"
    assert doc["router"]["lan_ip"] == "10.0.1.201" and doc["router"]["lan_ip_source"] == "auto"
    assert "nothing is saved" in r.stderr
    assert not Path(no_config["STATE_DIRECTORY"]).exists(), "a first look without config wrote state"


def test_doctor_without_config_walks_the_chain_with_the_defaults(lab, no_config) -> None:
    r = natlink(lab, no_config, "doctor")
    assert "no config file: the defaults (lan_ip auto, protocols upnp, natpmp, pcp" in r.stdout
    assert "the config is not valid" not in r.stdout
    assert f"WAN address {lab.wan_ip} is public" in r.stdout
    assert not Path(no_config["STATE_DIRECTORY"]).exists(), "a first look without config wrote state"


def test_a_named_config_that_is_missing_is_still_an_error(lab, no_config, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    r = natlink(lab, no_config, "-c", str(missing), "mappings")
    assert r.returncode == 2 and f"config file {missing} does not exist" in r.stderr
    assert f"natlink -c {missing} init" in r.stderr


def test_ip_without_config_shows_the_router_wan_address(lab, no_config) -> None:
    r = natlink(lab, no_config, "ip")  # the lab has no way out: the default echo URLs fail, the router answers
    assert "no config file, so the defaults" in r.stderr and "Traceback" not in r.stderr
    assert f"router WAN:  {lab.wan_ip}" in r.stdout
    assert not Path(no_config["STATE_DIRECTORY"]).exists(), "a first look without config wrote state"
