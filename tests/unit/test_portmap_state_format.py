"""The "mappings" state file keeps its format: files written by natlink at commit 7c35a70 (before Owned became a
Forward plus its bookkeeping) load, and are written back byte for byte; a file written now has the same keys.

tests/unit/state_7c35a70/mappings-<mapper>.json are what that commit's reconcile wrote against its in-process
fake gateway (two mappings: rdp tcp 3390 -> 3389 with a 1 h lease, game udp 27015 with 2 h; UPnP on a router
that takes permanent leases only, NAT-PMP, PCP with its nonces)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_gateway import FakeGateway, Quirks
from natlink.config import parse_config
from natlink.portmap.plan import plan
from natlink.portmap.reconcile import STATE_KEY, desired_mappings, load_owned, reconcile, save_owned
from natlink.state import StateStore
from test_portmap_fake_gateway import ME, router_for

OLD = Path(__file__).parent / "state_7c35a70"
MAPPERS = ["upnp", "natpmp", "pcp"]


def config(tmp_path: Path):
    text = (f'[router]\ngateway = "{ME}"\nlan_ip = "{ME}"\nlease = "1h"\ntimeout = 2\n\n'
            '[[mapping]]\nname = "rdp"\nprotocol = "tcp"\nexternal_port = 3390\ninternal_port = 3389\n'
            'description = "remote desktop"\n\n'
            '[[mapping]]\nname = "game"\nprotocol = "udp"\nexternal_port = 27015\ninternal_port = 27015\n'
            f'lease = "2h"\n\n[service]\nstate_dir = "{tmp_path / "state"}"\n')
    path = tmp_path / "natlink.toml"
    path.write_text(text)
    return parse_config(text, path)


def old_store(tmp_path: Path, mapper: str) -> tuple[StateStore, bytes]:
    raw = (OLD / f"mappings-{mapper}.json").read_bytes()
    store = StateStore(tmp_path / "state")
    store.directory.mkdir()
    store.path(STATE_KEY).write_bytes(raw)
    return store, raw


@pytest.mark.parametrize("mapper", MAPPERS)
def test_an_old_state_file_loads_field_for_field(tmp_path, mapper):
    store, raw = old_store(tmp_path, mapper)
    owned = load_owned(store)
    assert sorted(owned) == ["game", "rdp"]
    for name, data in json.loads(raw).items():
        rec = owned[name]
        assert rec.mapper == data["via"] == mapper
        assert rec.to_json() == data
        assert (rec.protocol, rec.external_port, rec.internal_ip, rec.internal_port) == (
            data["protocol"], data["external_port"], data["internal_ip"], data["internal_port"])
    rdp = owned["rdp"]
    assert (rdp.protocol, rdp.external_port, rdp.internal_port) == ("tcp", 3390, 3389)
    assert (rdp.lease, rdp.permanent_only) == ((0, True) if mapper == "upnp" else (3600, False))
    assert (rdp.nonce is not None) == (mapper == "pcp")


@pytest.mark.parametrize("mapper", MAPPERS)
def test_an_old_state_file_is_written_back_byte_for_byte(tmp_path, mapper):
    store, raw = old_store(tmp_path, mapper)
    save_owned(store, load_owned(store))
    assert store.path(STATE_KEY).read_bytes() == raw


@pytest.mark.parametrize("mapper", ["natpmp", "pcp"])
def test_old_records_stand_for_the_router_table(tmp_path, mapper):
    """NAT-PMP/PCP plan from the records alone: an old record a minute later is asked for again, not re-added."""
    store, _ = old_store(tmp_path, mapper)
    owned = load_owned(store)
    now = owned["rdp"].granted_at + 60
    steps = plan(desired_mappings(config(tmp_path), ME), None, owned, self_ip=ME, mapper=mapper, now=now,
                 epoch=owned["rdp"].epoch + 60).steps
    assert [(s.action, s.name) for s in steps] == [("verify", "rdp"), ("verify", "game")]
    assert steps[0].have == owned["rdp"].mapping()


@pytest.mark.parametrize("mapper", MAPPERS)
def test_a_state_file_written_now_has_the_old_keys(tmp_path, mapper):
    quirks = Quirks(permanent_only=725) if mapper == "upnp" else Quirks()
    with FakeGateway(quirks=quirks) as gw:
        cfg = config(tmp_path)
        store = StateStore(cfg.service.state_dir)
        assert reconcile(cfg, store, router=router_for(gw, mapper)).ok
    new = json.loads(store.path(STATE_KEY).read_text())
    old = json.loads((OLD / f"mappings-{mapper}.json").read_text())
    assert sorted(new) == sorted(old)
    for name, rec in old.items():
        assert sorted(new[name]) == sorted(rec)
        assert {k: type(v) for k, v in new[name].items()} == {k: type(v) for k, v in rec.items()}
        same = ("name", "via", "protocol", "external_port", "internal_ip", "internal_port", "lease",
                "permanent_only", "gateway")
        assert {k: new[name][k] for k in same} == {k: rec[k] for k in same}
