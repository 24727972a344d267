"""`natlink ddns` in the lab, end to end: the router (miniupnpd) as the IP source, knot as the RFC 2136 server
with TSIG. The record appears (kdig in the wan namespace sees it), a second run sends nothing, an ISP address
change is followed, and a wrong key is a clear fatal error that is not retried."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dns_support import kdig
from dns_support import natlink_json as natlink

pytestmark = pytest.mark.lab

NAME = "rdp.home.example"


def write_config(lab: Any, key_file: str, extra: str = "", name: str = "home") -> str:
    path = os.path.join(lab.workdir, f"natlink-{name}.toml")
    Path(path).write_text(f"""
[router]
igd_url = "{lab.igd_url}"
[public_ip]
sources = ["router"]
[[ddns]]
name = "{name}"
provider = "rfc2136"
hostnames = ["{NAME}"]
server = "{lab.dns_server}"
tsig_key_file = "{key_file}"
{extra}
[service]
state_dir = "{lab.workdir}/state"
""")
    return path


def knot_updates(lab: Any) -> int:
    """How many DNS UPDATE messages knot has processed (it logs each one)."""
    return Path(lab.workdir, "knot.log").read_text().count("DDNS, processing")


def test_publish_skip_and_follow_ip_change(lab: Any) -> None:
    cfg = write_config(lab, lab.tsig_key_file)
    assert kdig(lab, NAME) == []
    code, doc, _ = natlink(lab, cfg, "ddns")
    assert code == 0, doc
    (entry,) = doc["entries"]
    assert (entry["action"], entry["outcome"], entry["kind"]) == ("update", "good", "success")
    assert entry["verify_problem"] is None
    assert doc["public_ipv4"] == lab.wan_ip and doc["verdict"] == "public"
    assert kdig(lab, NAME) == [lab.wan_ip]
    assert knot_updates(lab) == 1

    code, doc, _ = natlink(lab, cfg, "ddns")  # unchanged: zero messages to the DNS server
    assert code == 0
    assert (doc["entries"][0]["action"], doc["entries"][0]["requests"]) == ("skip", 0)
    assert knot_updates(lab) == 1

    lab.ip_change("11.0.0.7")
    code, doc, _ = natlink(lab, cfg, "ddns")
    assert code == 0 and doc["entries"][0]["outcome"] == "good"
    assert kdig(lab, NAME) == ["11.0.0.7"]  # the old address is gone: the RRset was replaced, not appended to
    assert knot_updates(lab) == 2
    state = json.loads(Path(lab.workdir, "state", "ddns-home.json").read_text())
    assert state["published"] == {"ipv4": "11.0.0.7"} and state["last_outcome"] == "good"


def test_explicit_zone_and_tcp(lab: Any) -> None:
    """tcp = true really uses TCP: with UDP port 53 dropped on the DNS host the update still lands."""
    lab.run("wan", ["nft", "-f", "-"], input="table inet natlink_test {\n"
            "  chain input {\n    type filter hook input priority 0;\n    udp dport 53 drop\n  }\n}\n")
    cfg = write_config(lab, lab.tsig_key_file, extra='zone = "home.example"\ntcp = true\nttl = "2m"')
    code, doc, _ = natlink(lab, cfg, "ddns")
    assert code == 0, doc
    answer = lab.run("wan", ["kdig", "+tcp", f"@{lab.dns_server}", NAME, "A", "+noall", "+answer"]).stdout.split()
    assert (answer[0], answer[1], answer[3], answer[4]) == (NAME + ".", "120", "A", lab.wan_ip)


@pytest.mark.parametrize("key_text, outcome", [
    ('key "natlink-lab" {{ algorithm hmac-sha256; secret "{other}"; }};', "badsig"),
    ('key "not-the-lab-key" {{ algorithm hmac-sha256; secret "{other}"; }};', "badkey"),
    ('key "natlink-lab" {{ algorithm hmac-sha512; secret "{other}"; }};', "badkey"),
])
def test_wrong_key_is_fatal_and_not_retried(lab: Any, key_text: str, outcome: str) -> None:
    import base64
    other = base64.b64encode(b"definitely-not-the-lab-secret-000").decode()
    bad = Path(lab.workdir, "bad.key")
    bad.write_text(key_text.format(other=other))
    bad.chmod(0o600)
    cfg = write_config(lab, str(bad), name="bad")
    code, doc, err = natlink(lab, cfg, "ddns")
    assert code == 1
    (entry,) = doc["entries"]
    assert entry["fatal"] is True and entry["kind"] == "fatal"
    assert entry["outcome"] == outcome, entry
    assert "tsig_key_file" in entry["message"]
    assert "Traceback" not in err and other not in err + json.dumps(doc)
    assert kdig(lab, NAME) == []
    log_before = Path(lab.workdir, "knot.log").read_text()

    for _ in range(3):  # later rounds: stopped, nothing sent to knot
        code, doc, _ = natlink(lab, cfg, "ddns")
        assert code == 1
        assert (doc["entries"][0]["action"], doc["entries"][0]["requests"]) == ("blocked", 0)
    assert Path(lab.workdir, "knot.log").read_text() == log_before  # (knot logs updates it processes)

    # Fixing the key file path (a config change) lets the entry run again.
    fixed = write_config(lab, lab.tsig_key_file, name="bad")
    code, doc, _ = natlink(lab, fixed, "ddns")
    assert code == 0 and doc["entries"][0]["outcome"] == "good"
    assert kdig(lab, NAME) == [lab.wan_ip]
