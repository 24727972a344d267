"""A first look without a config file keeps its state in memory: nothing reaches the disk."""

import pytest

from natlink.config.files import default_config
from natlink.state import MemoryStore, StateStore, store_for


def test_no_config_means_a_memory_store_that_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    store = store_for(default_config())
    assert isinstance(store, MemoryStore)
    store.save("router", {"igd_url": "http://10.0.1.1:5000/rootDesc.xml"})
    with store.write_lock():
        store.save("publicip", {"verdict": "public"})
    assert store.load("router") == {"igd_url": "http://10.0.1.1:5000/rootDesc.xml"}
    assert store.keys() == ["publicip", "router"] and store.load("nope", 7) == 7
    store.delete("router")
    assert store.keys() == ["publicip"]
    assert not (tmp_path / "state").exists()


def test_a_memory_store_refuses_what_a_file_would_refuse():
    with pytest.raises(TypeError):
        MemoryStore().save("x", {"secret": object()})


def test_a_config_file_keeps_its_state_directory(tmp_path):
    from dataclasses import replace

    cfg = replace(default_config(), path=tmp_path / "c.toml")
    store = store_for(cfg)
    assert type(store) is StateStore
