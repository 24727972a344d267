"""Per-name outcomes, A/AAAA rules and the live record, through update_all against a strict local dyndns2
server whose accepted updates land in a real knot on loopback (the live record natlink reads back)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from natlink.ddns.updater import update_all
from natlink.publicip import PublicIpReport
from natlink.state import StateStore
from knot_local import LocalKnot, knot  # noqa: F401  (fixture)
from test_ddns_fakes import PASSWORD, USER, Dyndns2Fake, load, write_secret

NOW = 1_700_000_000.0
A, B = "a.home.example", "b.home.example"
IP, IP2, IP6 = "11.0.0.2", "11.0.0.3", "2001:db8:1::201"


class PublishingFake(Dyndns2Fake):
    """A dyndns2 server with an answer per hostname (and family) that publishes what it accepts into knot,
    as a provider's update lands in its zone."""

    def __init__(self, dns: LocalKnot | None, answers: dict[str, str], user_is_host: bool = False,
                 publish: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.dns, self.answers, self.user_is_host, self.publish = dns, answers, user_is_host, publish

    def check(self, request: Request) -> list[str]:
        problems = super().check(request)
        if self.user_is_host:  # nsupdate.info, HE.net: the username is the hostname, the secret is per host
            problems = [p for p in problems if p != "wrong credentials"]
            auth = request.authorization
            if auth is not None and (auth.username, auth.password) != (request.args.get("hostname"), PASSWORD):
                problems.append("wrong credentials")
        return problems

    def handler(self, request: Request) -> Response:
        problems = self.check(request)
        if problems:
            self.problems.extend(problems)
            return Response("bad request: " + "; ".join(problems), status=400)
        self.requests.append(dict(request.args))
        host = request.args["hostname"]
        ips = [p for p in request.args.get("myip", "").split(",") if p]
        answer = self.answers.get(f"{host}/{'6' if ':' in ips[0] else '4'}" if len(ips) == 1 else host,
                                  self.answers.get(host, "good"))
        if answer.startswith("good") and self.dns is not None and self.publish:
            for ip in ips:
                self.dns.set(host, "AAAA" if ":" in ip else "A", ip)
        return Response(answer.format(ip=",".join(ips)), content_type="text/plain")


def report(v4: str | None, v6: str | None = None) -> PublicIpReport:
    return PublicIpReport(public_ipv4=v4, public_ipv6=v6, router_wan_ipv4=v4, verdict="public", problem=None)


def setup_entry(tmp_path: Path, httpserver: Any, fake: Dyndns2Fake, provider: str, hostnames: tuple[str, ...],
                extra: str) -> tuple[Any, StateStore]:
    httpserver.expect_request(fake.path).respond_with_handler(fake.handler)
    pw = write_secret(tmp_path, "pw", PASSWORD)
    names = ", ".join(f'"{h}"' for h in hostnames)
    cfg = load(tmp_path, f'[[ddns]]\nname = "d"\nprovider = "{provider}"\nhostnames = [{names}]\n'
                         f'server = "{httpserver.url_for("/")}"\npassword_file = "{pw}"\n{extra}')
    return cfg, StateStore(cfg.service.state_dir)


def run(cfg: Any, store: StateStore, at: float, v4: str | None = IP, v6: str | None = None, **kw: Any) -> Any:
    (result,) = update_all(cfg, store, report(v4, v6), now=at, rng=random.Random(1), **kw)
    return result


def test_nsupdate_info_two_names_nohost_on_the_second(tmp_path: Path, httpserver: Any, knot: LocalKnot) -> None:
    """The issue's case: username = hostname, `nohost` for the second name. The first name is recorded as
    updated and kept up to date; only the second is stopped."""
    fake = PublishingFake(knot, {B: "nohost"}, user_is_host=True, ipv6_param="myip")
    cfg, store = setup_entry(tmp_path, httpserver, fake, "dyndns2", (A, B), f'nameserver = "{knot.nameserver}"')

    first = run(cfg, store, NOW)
    assert fake.problems == [] and [r["hostname"] for r in fake.requests] == [A, B]
    assert [(h.hostname, h.action, h.outcome, h.kind) for h in first.hosts] == [
        (A, "update", "good", "success"), (B, "update", "nohost", "fatal")]
    assert first.fatal and first.hosts[0].answers == {"ipv4": "good"}
    assert knot.get(A, "A") == [IP]
    state = json.loads(store.path("ddns-d").read_text())
    assert state["hosts"][A]["published"] == {"ipv4": IP} and state["hosts"][A]["fatal"] is False
    assert state["hosts"][B]["fatal"] is True and state["hosts"][B]["last_outcome"] == "nohost"
    assert state["fatal"] is True and state["published"] == {"ipv4": IP}  # the entry-level recap
    assert PASSWORD not in json.dumps(first.to_json()) + store.path("ddns-d").read_text()

    again = run(cfg, store, NOW + 300)  # unchanged: A is checked against knot, B stays stopped; nothing sent
    assert len(fake.requests) == 2 and again.requests == 0
    assert [(h.hostname, h.action) for h in again.hosts] == [(A, "skip"), (B, "blocked")]
    assert "127.0.0.1" in again.hosts[0].message and "answers the same" in again.hosts[0].message

    moved = run(cfg, store, NOW + 600, v4=IP2)  # a new address: A follows, B is still not asked
    assert [r["hostname"] for r in fake.requests[2:]] == [A] and moved.requests == 1
    assert knot.get(A, "A") == [IP2] and moved.hosts[1].action == "blocked"


def test_username_defaults_to_the_hostname_for_one_entry_per_host(tmp_path: Path, httpserver: Any) -> None:
    fake = PublishingFake(None, {}, user_is_host=True, ipv6_param="myip")
    cfg, store = setup_entry(tmp_path, httpserver, fake, "dyndns2", (A,), "verify = false")
    assert run(cfg, store, NOW).outcome == "good" and fake.problems == []


def test_drift_is_repaired_next_round_and_reported(tmp_path: Path, httpserver: Any, knot: LocalKnot) -> None:
    fake = PublishingFake(knot, {}, ipv6_param="myip")
    cfg, store = setup_entry(tmp_path, httpserver, fake, "dyndns2", (A,),
                             f'username = "{USER}"\nnameserver = "{knot.nameserver}"')
    assert run(cfg, store, NOW).outcome == "good" and knot.get(A, "A") == [IP]
    knot.set(A, "A", "11.0.0.99")  # someone edits the record by hand

    repaired = run(cfg, store, NOW + 300)
    assert repaired.action == "update" and repaired.outcome == "good" and len(fake.requests) == 2
    assert repaired.drift == (f"{A} A at 127.0.0.1:{knot.port} is 11.0.0.99, not {IP}",)
    assert knot.get(A, "A") == [IP]
    calm = run(cfg, store, NOW + 600)
    assert (calm.action, calm.requests, calm.drift) == ("skip", 0, ())


def test_a_provider_still_publishing_gets_time_and_a_failed_repair_is_not_repeated(
        tmp_path: Path, httpserver: Any, knot: LocalKnot) -> None:
    fake = PublishingFake(knot, {}, publish=False, ipv6_param="myip")  # answers good, the zone never follows
    cfg, store = setup_entry(tmp_path, httpserver, fake, "dyndns2", (A,),
                             f'username = "{USER}"\nnameserver = "{knot.nameserver}"')
    first = run(cfg, store, NOW)
    assert first.outcome == "good" and "missing" in (first.verify_problem or "")
    soon = run(cfg, store, NOW + 300)  # the zone may lag behind the provider's answer: wait
    assert soon.action == "skip" and "may still be publishing" in soon.message and len(fake.requests) == 1
    late = run(cfg, store, NOW + 1200)  # past the grace: a drift, repaired once
    assert late.action == "update" and late.drift and len(fake.requests) == 2
    assert run(cfg, store, NOW + 1500).action == "skip"  # the repair, too, is given time
    stuck = run(cfg, store, NOW + 2400)  # the repair did not take: reported, not re-sent (it would be a nochg)
    assert stuck.action == "skip" and stuck.drift and "not sent again" in stuck.message
    assert len(fake.requests) == 2
    forced = run(cfg, store, NOW + 2700, force=True)
    assert forced.action == "update" and len(fake.requests) == 3


def test_he_one_request_per_family_and_a_family_that_failed_is_retried_alone(
        tmp_path: Path, httpserver: Any) -> None:
    fake = PublishingFake(None, {f"{A}/6": "911"}, user_is_host=True, ipv6_param="myip")
    cfg, store = setup_entry(tmp_path, httpserver, fake, "he", (A,), "ipv6 = true\nverify = false")
    first = run(cfg, store, NOW, v6=IP6)
    assert fake.problems == [] and fake.requests == [{"hostname": A, "myip": IP}, {"hostname": A, "myip": IP6}]
    assert first.hosts[0].answers == {"ipv4": "good", "ipv6": "911"} and first.kind == "transient"
    state = json.loads(store.path("ddns-d").read_text())
    assert state["hosts"][A]["published"] == {"ipv4": IP}  # the A record the provider took is recorded
    fake.answers = {}
    retry = run(cfg, store, NOW + 7200, v6=IP6)
    assert fake.requests[2:] == [{"hostname": A, "myip": IP6}]  # only AAAA: no nochg provoked for A
    assert retry.outcome == "good" and retry.hosts[0].answers == {"ipv6": "good"}
    assert json.loads(store.path("ddns-d").read_text())["published"] == {"ipv4": IP, "ipv6": IP6}


@pytest.mark.parametrize("provider, expected", [
    ("dyndns2", [{"hostname": A, "myip": f"{IP},{IP6}"}]),
    ("strato", [{"hostname": A, "myip": f"{IP},{IP6}"}]),
])
def test_together_providers_send_both_families_in_one_request(tmp_path: Path, httpserver: Any, provider: str,
                                                              expected: list[dict[str, str]]) -> None:
    fake = PublishingFake(None, {}, ipv6_param="myip")
    cfg, store = setup_entry(tmp_path, httpserver, fake, provider, (A,),
                             f'username = "{USER}"\nipv6 = true\nverify = false')
    assert run(cfg, store, NOW, v6=IP6).outcome == "good"
    run(cfg, store, NOW + 300, v6="2001:db8:1::202")  # only AAAA changed: A goes along, so it is not deleted
    assert fake.problems == [] and fake.requests == expected + [{"hostname": A, "myip": f"{IP},2001:db8:1::202"}]


def test_ddns_command_prints_one_line_per_name(tmp_path: Path, httpserver: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from natlink.cli import main
    fake = PublishingFake(None, {B: "nohost"}, user_is_host=True, ipv6_param="myip")
    httpserver.expect_request("/ip").respond_with_data(IP, content_type="text/plain")
    cfg, _ = setup_entry(tmp_path, httpserver, fake, "dyndns2", (A, B),
                         f'verify = false\n[public_ip]\nsources = ["{httpserver.url_for("/ip")}"]')
    assert main(["-c", str(cfg.path), "ddns"]) == 1  # a stopped name is a failure to look at
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "d (dyndns2):"
    assert lines[1].startswith(f"  {A}: updated [good]") and lines[2].startswith(f"  {B}: STOPPED [nohost]")
    assert "does not exist in this account" in lines[2] and PASSWORD not in "\n".join(lines)


def test_an_ipv4_only_provider_never_records_an_aaaa_it_did_not_send(tmp_path: Path, httpserver: Any) -> None:
    fake = PublishingFake(None, {}, ipv6_param=None, extra={"system": "dyndns"})
    cfg, store = setup_entry(tmp_path, httpserver, fake, "ovh", (A,), f'username = "{USER}"\nipv6 = true\n'
                                                                     'verify = false')
    assert run(cfg, store, NOW, v6=IP6).outcome == "good"
    assert fake.problems == [] and fake.requests == [{"hostname": A, "myip": IP, "system": "dyndns"}]
    assert json.loads(store.path("ddns-d").read_text())["published"] == {"ipv4": IP}
    assert run(cfg, store, NOW + 300, v6=IP6).action == "skip" and len(fake.requests) == 1


class CountingStore(StateStore):
    """The real state store, counting its writes per key (writes must stay cheap)."""

    def __init__(self, directory: Any) -> None:
        super().__init__(directory)
        self.saves: list[str] = []

    def save(self, key: str, data: Any) -> None:
        self.saves.append(key)
        super().save(key, data)


def kept(store: StateStore, host: str = A) -> Any:
    return json.loads(store.path("ddns-d").read_text())["hosts"][host].get("authoritative")


@pytest.mark.parametrize("rounds", [
    # (seconds after NOW, what knot holds before the round (None: unchanged), written?, kept addresses, kept at)
    [(0, None, True, [IP], 0), (60, None, False, [IP], 0), (400, None, True, [IP], 400),
     (460, "11.0.0.99", True, [IP], 460)],  # a drift is repaired: what the server answers after the repair
    # the record deleted soon after the update (the provider may still be publishing): kept as it is, no record
    [(0, None, True, [IP], 0), (100, "", True, [], 100), (160, None, False, [], 100)],
    # the service restarted at +90 (since): its first round re-saves the answer, then it is quiet again
    [(0, None, True, [IP], 0), (120, None, True, [IP], 120, 90), (180, None, False, [IP], 120, 90)],
])
def test_the_authoritative_answer_is_kept_per_name_and_written_only_when_worth_it(
        tmp_path: Path, httpserver: Any, knot: LocalKnot, rounds: list[tuple]) -> None:
    fake = PublishingFake(knot, {}, ipv6_param="myip")
    cfg, _ = setup_entry(tmp_path, httpserver, fake, "dyndns2", (A,),
                         f'username = "{USER}"\nnameserver = "{knot.nameserver}"')
    store = CountingStore(cfg.service.state_dir)
    for after, holds, written, addresses, at, *started in rounds:
        if holds is not None:
            knot.set(A, "A", *([holds] if holds else []))
        before = len(store.saves)
        run(cfg, store, NOW + after, since=NOW + started[0] if started else None)
        assert (len(store.saves) > before) is written, (after, store.saves)
        assert len(store.saves) - before <= 1  # at most one write per entry per round
        note = kept(store)
        assert note["addresses"] == {"ipv4": addresses} and note["at"] == NOW + at
        assert note["server"] == f"127.0.0.1:{knot.port}" and note["problem"] is None
    assert PASSWORD not in store.path("ddns-d").read_text()


def test_a_server_that_cannot_be_asked_is_kept_as_the_problem(tmp_path: Path, httpserver: Any,
                                                               knot: LocalKnot) -> None:
    fake = PublishingFake(knot, {}, ipv6_param="myip")
    cfg, _ = setup_entry(tmp_path, httpserver, fake, "dyndns2", (A,),
                         f'username = "{USER}"\nnameserver = "127.0.0.1:{_closed_port()}"')
    store = CountingStore(cfg.service.state_dir)
    assert run(cfg, store, NOW).action == "update" and knot.get(A, "A") == [IP]  # after the update, asked
    note = kept(store)
    assert "no answer" in note["problem"] and note["at"] == NOW and note["addresses"] == {}
    assert run(cfg, store, NOW + 60).action == "skip" and store.saves == ["ddns-d"]  # the same problem: no write
    assert kept(store) == note


def _closed_port() -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
