"""Config contract: every validation error is one line naming file:line, the key and the fix; exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from natlink.cli import main
from natlink.config import parse_config, parse_target
from natlink.ddns import registry
from natlink.errors import ConfigError

RECORD_APIS = ("alidns", "dnspod", "desec", "porkbun", "gandi", "digitalocean")  # examples in this order
REPO = Path(__file__).resolve().parents[2]

BASE = """\
[router]
lan_ip = "10.0.1.201"

[[mapping]]
name = "rdp"
external_port = 3390
internal_port = 3389
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["-c", str(write(tmp_path, text)), "check-config"])
    err = capsys.readouterr().err
    return code, err


# (config text, expected fragments in the single error line)
CASES = [
    pytest.param(BASE + "extrnal_port = 1\n", ["config.toml:8:", "mapping[0].extrnal_port", "unknown key",
                                              "did you mean 'external_port'"], id="unknown-key"),
    pytest.param("[routr]\nlan_ip = \"10.0.1.201\"\n", ["config.toml:1:", "routr", "unknown section",
                                                       "did you mean 'router'"], id="unknown-section"),
    pytest.param(BASE.replace("3390", "70000"), ["config.toml:6:", "mapping[0].external_port",
                                                 "70000 is not a port (1-65535)"], id="port-range"),
    pytest.param(BASE.replace("3389", "0"), ["config.toml:7:", "internal_port", "0 is not a port"], id="port-zero"),
    pytest.param(BASE.replace("3390", '"3390"'), ["config.toml:6:", "external_port", "expected an integer",
                                                  "got a string"], id="wrong-type"),
    pytest.param(BASE.replace('lan_ip = "10.0.1.201"', "lan_ip = true"), ["config.toml:2:", "router.lan_ip",
                                                                          "expected a string"], id="bool-type"),
    pytest.param(BASE.replace('lan_ip = "10.0.1.201"', 'lease = "1 hour"'), ["config.toml:2:", "router.lease",
                                                                             "not a duration"], id="duration"),
    pytest.param(BASE.replace("10.0.1.201", "10.0.1.300"), ["config.toml:2:", "router.lan_ip",
                                                            "not an IP address"], id="bad-ip"),
    pytest.param(BASE + '\n[[mapping]]\nname = "rdp"\nexternal_port = 3391\n',
                 ["config.toml:10:", "mapping[1].name", "duplicate name 'rdp'"], id="dup-name"),
    pytest.param(BASE + '\n[[mapping]]\nname = "rdp2"\nexternal_port = 3390\n',
                 ["config.toml:11:", "mapping[1].external_port", "TCP 3390 is already used by mapping 'rdp'"],
                 id="dup-port"),
    pytest.param(BASE + '\n[[ddns]]\nname = "h"\nprovider = "noipp"\nhostnames = ["a.example"]\n',
                 ["config.toml:11:", "ddns[0].provider", "unknown provider 'noipp'", "did you mean 'noip'"],
                 id="unknown-provider"),
    pytest.param(BASE + '\n[[ddns]]\nname = "h"\nprovider = "dyndns2"\nhostnames = ["a.example"]\n'
                        'username = "me"\npassword_file = "pw"\n',
                 ["config.toml:9:", "ddns[0].server", "is required for provider 'dyndns2'"], id="missing-key"),
    pytest.param(BASE + '\n[[ddns]]\nname = "h"\nprovider = "duckdns"\nhostnames = ["a"]\ntoken = "abc123"\n',
                 ["config.toml:13:", "ddns[0].token", "must not be written in the config file", "token_file"],
                 id="inline-secret"),
    pytest.param(BASE + '\n[[ddns]]\nname = "h"\nprovider = "duckdns"\nhostnames = ["a"]\n'
                        'token_file = "/nonexistent/token"\n',
                 ["config.toml:13:", "ddns[0].token_file", "cannot read secret file /nonexistent/token"],
                 id="unreadable-secret"),
    pytest.param(BASE + '\n[[probe]]\nmapping = "rpd"\nreflector = "http://11.0.0.1:8765"\n',
                 ["config.toml:10:", "probe[0].mapping", "no [[mapping]] is named 'rpd'", "did you mean 'rdp'"],
                 id="probe-unknown-mapping"),
    pytest.param(BASE + '\n[[probe]]\ntarget = "host"\nvia = "hairpin"\n',
                 ["config.toml:10:", "probe[0].target", "is not host:port"], id="probe-bad-target"),
    pytest.param(BASE + '\n[router]\n', ["not valid TOML"], id="toml-syntax"),
    pytest.param(BASE + '\n[schedule]\nddns = "5s"\n', ["config.toml:10:", "schedule.ddns", "too often"],
                 id="ddns-too-often"),
    pytest.param(BASE.replace('name = "rdp"', 'name = "rdp"\nprotocol = "tpc"'),
                 ["config.toml:6:", "mapping[0].protocol", "'tpc' is not one of"], id="bad-protocol"),
    pytest.param('[router]\nprotocols = ["upnp", "nat-pmp"]\n', ["config.toml:2:", "router.protocols",
                                                                 "did you mean 'natpmp'"], id="bad-router-protocol"),
    pytest.param('[mapping]\nname = "x"\nexternal_port = 1\n', ["mapping", "write [[mapping]]"], id="table-not-list"),
]


@pytest.mark.parametrize(("text", "fragments"), CASES)
def test_validation_error_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            text: str, fragments: list[str]) -> None:
    code, err = check(tmp_path, text, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("natlink: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in err


def test_secret_value_never_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "s3cr3t-VALUE-xyz"
    code, err = check(tmp_path, BASE + f'\n[[ddns]]\nname = "h"\nprovider = "duckdns"\nhostnames = ["a"]\n'
                                       f'token = "{secret}"\n', capsys)
    assert code == 2 and secret not in err


def test_example_config_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-c", str(REPO / "config.example.toml"), "--json", "check-config"])
    out = capsys.readouterr().out
    assert code == 0
    assert '"ok": true' in out and '"rdp"' in out


def test_example_config_contents() -> None:
    cfg = parse_config((REPO / "config.example.toml").read_text(), REPO / "config.example.toml")
    assert cfg.router.lease == 3600 and cfg.router.lan_ip == "auto"
    m = cfg.mapping("rdp")
    assert m is not None and (m.external_port, m.internal_port, m.internal_ip) == (3390, 3389, None)


def test_example_config_commented_entries_validate(tmp_path: Path) -> None:
    """The commented-out [[ddns]] and [[probe]] examples are valid too once uncommented."""
    text = (REPO / "config.example.toml").read_text()
    lines = []
    for line in text.splitlines():
        if line.startswith("# [[ddns]]") or line.startswith("# [[probe]]"):
            lines.append(line[2:].split("#")[0].rstrip())
        elif lines and lines[-1].startswith(("[[ddns]]", "[[probe]]", "name", "provider", "hostnames", "server",
                                              "zone", "tsig", "username", "password", "api_token", "token",
                                              "mapping", "via", "reflector", "access_key", "secret", "api_key")) and line.startswith("# ") \
                and not line.startswith("# #") and "=" in line.split("#")[1] and not line.startswith("#  "):
            lines.append(line[2:])
        else:
            lines.append(line)
    uncommented = "\n".join(lines)
    for name in ("tsig.key",):
        (tmp_path / name).write_text('key "k" { algorithm hmac-sha256; secret "c2VjcmV0c2VjcmV0"; };\n')
    (tmp_path / "noip.password").write_text("pw\n")
    (tmp_path / "reflector.token").write_text("t0ken\n")
    uncommented = uncommented.replace("/etc/natlink/noip.password", str(tmp_path / "noip.password"))
    cfg = parse_config(uncommented, tmp_path / "config.toml")
    assert [d.provider for d in cfg.ddns if d.provider not in RECORD_APIS] == [
        "rfc2136", "noip", "he", "he", "namecheap", "freedns", "cloudflare", "duckdns"]
    assert [d.provider for d in cfg.ddns if d.provider in RECORD_APIS] == [
        n for n in registry.names() if n in RECORD_APIS]
    assert cfg.probes[0].mapping == "rdp" and cfg.probes[0].via == "reflector"


def test_secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "token"
    token.write_text("abc\n")
    cfg = parse_config(f'[[ddns]]\nname = "d"\nprovider = "duckdns"\nhostnames = ["a"]\ntoken_file = "{token}"\n')
    assert cfg.ddns[0].secrets["token"].kind == "file"
    cfg = parse_config('[[ddns]]\nname = "d"\nprovider = "duckdns"\nhostnames = ["a"]\ntoken_env = "TOK"\n')
    assert cfg.ddns[0].secrets["token"].name == "TOK"
    with pytest.raises(ConfigError, match="give only one of token_file, token_env"):
        parse_config(f'[[ddns]]\nname = "d"\nprovider = "duckdns"\nhostnames = ["a"]\n'
                     f'token_file = "{token}"\ntoken_env = "X"\n')


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(tmp_path / "nope.toml"), "check-config"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_probe_named_after_its_target() -> None:
    cfg = parse_config('[[probe]]\ntarget = "rdp.home.example:3390"\nvia = "hairpin"\n'
                       '[[probe]]\ntarget = "[2001:db8::1]:443"\nvia = "hairpin"\n')
    assert [p.name for p in cfg.probes] == ["rdp.home.example:3390", "[2001:db8::1]:443"]


@pytest.mark.parametrize(("text", "expected"), [
    ("host:80", ("host", 80)), ("[2001:db8::1]:443", ("2001:db8::1", 443)), ("1.2.3.4:65535", ("1.2.3.4", 65535)),
    ("host", None), ("host:0", None), ("host:70000", None), ("a b:1", None),
])
def test_parse_target(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_target(text) == expected


def test_subprocess_exit_code_and_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("3390", "70000"))
    proc = subprocess.run([sys.executable, "-m", "natlink", "-c", str(path), "check-config"],
                          capture_output=True, text=True, env={**os.environ, "NATLINK_CONFIG": ""})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("natlink: config.toml:6: mapping[0].external_port: 70000 is not a port (1-65535)")


def test_every_subcommand_has_help() -> None:
    from natlink.cli import COMMANDS
    for name in COMMANDS:
        proc = subprocess.run([sys.executable, "-m", "natlink", name, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "exit codes:" in proc.stdout, name


def test_version() -> None:
    from natlink import __version__
    proc = subprocess.run([sys.executable, "-m", "natlink", "--version"], capture_output=True, text=True)
    assert proc.stdout.strip() == f"natlink {__version__}"


def test_global_options_after_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BASE)
    assert main(["check-config", "-c", str(path), "--json"]) == 0
    assert '"ok": true' in capsys.readouterr().out
