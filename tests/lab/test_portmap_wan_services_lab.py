"""Several WAN connection services, end to end: `natlink map` / `natlink mappings` on the lab's LAN host against a
FRITZ!Box-like IGD at the gateway's address (miniupnpd has one service, so it cannot show this: the router's
miniupnpd is stopped and the in-process fake gateway of tests/unit serves the description and the SOAP from the
router's namespace). natlink maps on the connected service, caches the choice, and moves when it fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))

from fake_gateway import FakeGateway, FakeService  # noqa: E402
from igd_descriptions import FRITZ  # noqa: E402

pytestmark = pytest.mark.lab

IP1 = "urn:schemas-upnp-org:service:WANIPConnection:1"
PPP1 = "urn:schemas-upnp-org:service:WANPPPConnection:1"
IP_PATH, PPP_PATH = "/igdupnp/control/WANIPConn1", "/igdupnp/control/WANPPPConn1"


@pytest.fixture
def box(lab):
    lab.router_down()  # miniupnpd would answer SSDP with its own one-service description
    gw = lab.call("rtr", lambda: FakeGateway(host=lab.gateway, services={
        IP_PATH: FakeService(IP1, "Disconnected", "0.0.0.0"), PPP_PATH: FakeService(PPP1, "Connected", "84.1.2.3")},
        descriptions={"/igddesc.xml": FRITZ}).start())
    yield gw
    gw.stop()


def write_config(tmp_path: Path, url: str) -> str:
    path = tmp_path / "natlink.toml"
    path.write_text(f'[router]\nprotocols = ["upnp"]\nigd_url = "{url}"\nlease = "1h"\ntimeout = 2\n\n'
                    '[[mapping]]\nname = "rdp"\nexternal_port = 3390\ninternal_port = 3389\n\n'
                    f'[service]\nstate_dir = "{tmp_path / "state"}"\n')
    return str(path)


def natlink(lab, cfg: str, *args: str):
    r = lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, *args], check=False, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_natlink_maps_on_the_connected_service_caches_it_and_moves_when_it_fails(lab, box, tmp_path):
    cfg = write_config(tmp_path, box.url)
    doc = json.loads(natlink(lab, cfg, "--json", "map").stdout)
    chosen = doc["router"]["wan_service"]
    assert chosen["type"] == PPP1 and chosen["source"] == "ranked"
    assert box.actions("AddPortMapping") == [PPP_PATH] and box.services[IP_PATH].table == {}
    assert box.services[PPP_PATH].table[("tcp", 3390)].internal_ip == lab.lan_ip
    cached = json.loads((tmp_path / "state" / "router.json").read_text())
    assert cached["wan_service"] == {"type": PPP1, "control_url": f"http://{lab.gateway}:{box.http_port}{PPP_PATH}"}

    # the next run takes the cached choice: the other service is not asked anything
    box.posts.clear()
    shown = natlink(lab, cfg, "mappings").stdout
    assert "WAN service:" in shown and "WANPPPConnection:1" in shown and "3390" in shown
    assert {path for path, _ in box.posts} == {PPP_PATH}

    # the PPP session drops, the box comes up on its IP connection: the cached service reports no address,
    # natlink asks every service again and maps there
    box.services[PPP_PATH].status, box.services[PPP_PATH].external_ip = "Disconnected", "0.0.0.0"
    box.services[IP_PATH].status, box.services[IP_PATH].external_ip = "Connected", "84.1.2.9"
    box.posts.clear()
    doc = json.loads(natlink(lab, cfg, "--json", "map").stdout)
    assert doc["router"]["wan_service"]["type"] == IP1 and doc["router"]["wan_service"]["source"] == "ranked"
    assert box.actions("AddPortMapping") == [IP_PATH]
    assert box.services[IP_PATH].table[("tcp", 3390)].internal_port == 3389
    cached = json.loads((tmp_path / "state" / "router.json").read_text())
    assert cached["wan_service"]["type"] == IP1
