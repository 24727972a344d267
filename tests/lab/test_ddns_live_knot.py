"""The live record as the truth, in the lab: a dyndns2 stand-in on the WAN host whose accepted updates land in
the real knot (as a provider's updates land in its zone), natlink finding the zone's name server through DNS
and asking it directly. A record changed by hand with knsupdate is repaired on the next round and reported;
an unchanged record costs no request."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from dns_support import kdig, knsupdate
from dns_support import natlink_json as natlink
from service_support import start_http_sink

pytestmark = pytest.mark.lab

NAME = "dyn.home.example"
PORT = 8081
PASSWORD = "lab-dyndns-s3cret"


def test_hand_edited_record_is_repaired_next_round(lab: Any) -> None:
    def answer(req: dict[str, Any]) -> tuple[int, str]:
        expected = "Basic " + base64.b64encode(f"{NAME}:{PASSWORD}".encode()).decode()
        if req["auth"] != expected or req["path"] != "/nic/update":
            return 401, "badauth"
        host, ip = req["query"]["hostname"][0], req["query"]["myip"][0]
        if host != NAME:
            return 200, "nohost"
        knsupdate(lab, host, ip)  # the provider's update lands in its zone
        return 200, f"good {ip}"

    sink = start_http_sink(lab, PORT, answer)
    try:
        password = Path(lab.workdir, "dyn.password")
        password.write_text(PASSWORD + "\n")
        password.chmod(0o600)
        cfg = os.path.join(lab.workdir, "natlink-live.toml")
        ns = lab.dns_server if lab.dns_port == 53 else f"{lab.dns_server}:{lab.dns_port}"
        # nameserver: the zone's authoritative server (the lab has no resolver for NS discovery; the second
        # test covers discovery)
        Path(cfg).write_text(f"""
[router]
igd_url = "{lab.igd_url}"
[public_ip]
sources = ["router"]
[[ddns]]
name = "dyn"
provider = "dyndns2"
hostnames = ["{NAME}"]
server = "http://{lab.wan_host_ip}:{PORT}"
allow_insecure_http = true
password_file = "{password}"
nameserver = "{ns}"
[service]
state_dir = "{lab.workdir}/state"
""")
        code, doc, err = natlink(lab, cfg, "ddns")
        assert code == 0, err
        (entry,) = doc["entries"]
        assert (entry["action"], entry["outcome"], entry["verify_problem"]) == ("update", "good", None)
        assert kdig(lab, NAME) == [lab.wan_ip] and len(sink.requests) == 1

        code, doc, _ = natlink(lab, cfg, "ddns")  # unchanged and live record equal: nothing sent
        (entry,) = doc["entries"]
        assert code == 0 and (entry["action"], entry["requests"]) == ("skip", 0)
        assert f"{ns} answers the same" in entry["message"] and len(sink.requests) == 1

        knsupdate(lab, NAME, "11.0.0.99")  # someone changes the record by hand
        code, doc, err = natlink(lab, cfg, "ddns")
        (entry,) = doc["entries"]
        assert code == 0, err
        assert entry["action"] == "update" and entry["outcome"] == "good"
        assert entry["drift"] == [f"{NAME} A at {ns} is 11.0.0.99, not {lab.wan_ip}"]
        assert kdig(lab, NAME) == [lab.wan_ip] and len(sink.requests) == 2
        assert PASSWORD not in json.dumps(doc) + err

        code, doc, _ = natlink(lab, cfg, "ddns")  # repaired: quiet again
        assert code == 0 and doc["entries"][0]["action"] == "skip" and len(sink.requests) == 2
    finally:
        sink.stop()


def test_name_servers_are_found_through_dns_and_asked_directly(lab: Any) -> None:
    """Discovery: the zone and its NS come from a resolver (here the lab's knot, given as the bootstrap), the
    record from the NS itself with recursion off."""
    knsupdate(lab, NAME, "11.0.0.42")
    code = ("import json, sys; from natlink.ddns import live; "
            f"r = live.lookup({NAME!r}, 4, bootstrap=[{lab.dns_server!r}]); "
            f"print(json.dumps([live.authoritative_servers({NAME!r}, [{lab.dns_server!r}]), "
            "sorted(r.addresses or []), r.server, r.problem]))")
    proc = lab.run("lan", [sys.executable, "-c", code])
    servers, addresses, server, problem = json.loads(proc.stdout)
    assert servers == [lab.zone, [lab.dns_server]]  # ns.home.example's glue
    assert (addresses, server, problem) == (["11.0.0.42"], lab.dns_server, None)
