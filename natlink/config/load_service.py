"""Section loaders for running natlink: [schedule], [service] (with [service.alerts] and the status page)
and [doctor]; and where the state lives when [service] does not say."""

from __future__ import annotations

import os
from pathlib import Path

from natlink.config.model import AlertsCfg, DoctorCfg, ScheduleCfg, ServiceCfg
from natlink.config.problems import Loader
from natlink.config.section import Section, keys, shown
from natlink.config.values import loopback
from natlink.hostport import parse_target
from natlink.secrets import SecretRef


def schedule(s: Section) -> ScheduleCfg:
    # One rule for every job key: 0 means never (the job does not run at all, not even on events).
    d = ScheduleCfg()
    cfg = ScheduleCfg(mappings=s.duration("mappings", d.mappings) or 0,
                      ddns=s.duration("ddns", d.ddns) or 0,
                      probe=s.duration("probe", d.probe) or 0,
                      public_ip=s.duration("public_ip", d.public_ip) or 0,
                      jitter=s.duration("jitter", d.jitter) or 0)
    if 0 < cfg.ddns < 30:
        s.fail("ddns", f"{cfg.ddns} s is too often; providers ban clients that poll that fast (use at least \"30s\")")
    s.finish()
    return cfg


def service(loader: Loader, s: Section) -> ServiceCfg:
    metrics = s.string("metrics")
    if metrics is not None and parse_target(metrics) is None:
        s.fail("metrics", f"{shown(metrics)} is not ADDR:PORT (e.g. \"127.0.0.1:9877\")")
    web, web_password = _web(s)
    alerts_data = s.raw("alerts")
    alerts = AlertsCfg()
    if alerts_data is not None:
        a = Section(loader, alerts_data, "service.alerts", keys(AlertsCfg))
        command = a.str_list("command", nonempty=True)
        alerts = AlertsCfg(webhook=a.url("webhook"), command=command,
                           min_interval=a.duration("min_interval", AlertsCfg.min_interval) or 0, heartbeat=a.url("heartbeat"))
        a.finish()
    state_dir = s.string("state_dir", None)
    if state_dir is None:
        state_dir = default_state_dir(loader.path)
    hung_job = s.duration("hung_job", ServiceCfg.hung_job) or 0
    if hung_job < 1:
        s.fail("hung_job", "must be at least 1s (a job running longer counts as hung); the default is 5m")
    cfg = ServiceCfg(state_dir=str(loader.relative(state_dir)), unmap_on_stop=s.boolean("unmap_on_stop", ServiceCfg.unmap_on_stop),
                     metrics=metrics, web=web, web_password=web_password, alerts=alerts, hung_job=hung_job)
    s.finish()
    return cfg


def _web(s: Section) -> tuple[str | None, SecretRef | None]:
    """service.web and its password: an open page on a LAN is an attack surface, so a non-loopback bind
    needs web_password_file/_env/_credential."""
    web = s.string("web")
    password = s.secret("web_password", required=False)
    target = parse_target(web) if web is not None else None
    if web is not None and target is None:
        s.fail("web", f"{shown(web)} is not ADDR:PORT (e.g. \"127.0.0.1:9878\")")
    if target is not None and password is None and not loopback(target[0]):
        s.fail("web", f"{shown(web)} is reachable from other hosts; set web_password_file = \"/path\" (or "
                      "web_password_env / web_password_credential), or bind to 127.0.0.1")
    return web, password


def default_state_dir(config_path: Path | None) -> str:
    """$STATE_DIRECTORY (systemd), else for a user with a config in ~/.config/natlink (not root)
    $XDG_STATE_HOME/natlink (default ~/.local/state/natlink), else /var/lib/natlink."""
    systemd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd:
        return systemd
    if config_path is not None and os.geteuid() != 0:
        home = Path.home()
        user_config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "natlink"
        try:
            mine = config_path.expanduser().resolve().is_relative_to(user_config.resolve())
        except OSError:
            mine = False
        if mine:
            return str(Path(os.environ.get("XDG_STATE_HOME") or home / ".local" / "state") / "natlink")
    return ServiceCfg.state_dir


def doctor(s: Section) -> DoctorCfg:
    d = DoctorCfg()
    expected = s.get("expected_connections", int, d.expected_connections)
    if expected < 1:
        s.fail("expected_connections", "must be at least 1")
    nat_timeout_max = s.duration("nat_timeout_max", d.nat_timeout_max)
    if not nat_timeout_max:
        s.fail("nat_timeout_max", "must be more than 0 (how long the NAT timeout test may wait, e.g. \"10m\")")
    cfg = DoctorCfg(expected_connections=expected, nat_timeout_max=nat_timeout_max or d.nat_timeout_max)
    s.finish()
    return cfg
