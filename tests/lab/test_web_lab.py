"""The status page of `natlink run`, looked at in a real headless Chromium inside the lab's LAN namespace, with
the service running against the real miniupnpd (UPnP/NAT-PMP, real NAT), knot (RFC 2136) and natlink's
reflector: what a person sees, live updates without a reload, the actions, the login off loopback."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browser_support import PHONE, card_text, chromium, text_of
from service_support import HOST, job_done, start_natlink, start_reflector, wait_for, write_config

pytestmark = pytest.mark.lab

PORT = 9878


def web_config(lab, tmp_path: Path, listen: str, password: Path | None = None) -> Path:
    cfg = write_config(lab, tmp_path, alerts=False)
    text = cfg.read_text() + f'web = "{listen}"\n'  # the [service] table is the file's last
    if password is not None:
        text += f'web_password_file = "{password}"\n'
    cfg.write_text(text)
    return cfg


def page_up(lab, url: str) -> bool:
    def get() -> bool:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return True
        except urllib.error.HTTPError:
            return True  # it answers (a login redirect, a 401)
        except OSError:
            return False

    return lab.call("lan", get)


def knot_a(lab) -> list[str]:
    """HOST's A record as knot itself answers it (kdig from the WAN host)."""
    out = lab.run("wan", ["kdig", "-p", str(lab.dns_port), f"@{lab.dns_server}", HOST, "A", "+short"]).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def fact_text(driver, card: str, label: str) -> str:
    """The visible text of one fact (its value, age and notes) of a card, in one script call."""
    return str(driver.execute_script(
        "for (const c of document.querySelectorAll('article.card')) {"
        "  if (!(c.dataset.card || '').startsWith(arguments[0])) continue;"
        "  for (const f of c.querySelectorAll('.fact')) {"
        "    const dt = f.querySelector('dt'), dd = f.querySelector('dd');"
        "    if (dt && dd && dt.innerText.trim() === arguments[1]) return dd.innerText; } }"
        "return '';", card, label))


def shows_knots_answer(lab, driver, ip: str) -> bool:
    """The page's authoritative answer is knot's record (ip), judged ok and seen by this run, with its age and
    the server that answered."""
    shown = fact_text(driver, "DDNS home", "authoritative answer")
    return (knot_a(lab) == [ip] and shown.split()[:2] == ["OK", ip] and "unverified" not in shown
            and f"from {lab.dns_server}" in shown and ("ago" in shown or "just now" in shown))


def service_with_page(lab, tmp_path: Path) -> tuple:
    """`natlink run` with the page on the LAN namespace's loopback, after its first probe and DDNS round."""
    lab.tcp_service("lan", 3389)
    start_reflector(lab)
    nl = start_natlink(lab, web_config(lab, tmp_path, f"127.0.0.1:{PORT}"))
    wait_for(lambda: job_done(nl, "probe") and job_done(nl, "ddns"), 20, "the first probe and DDNS round")
    url = f"http://127.0.0.1:{PORT}/"
    wait_for(lambda: page_up(lab, url), 10, "the status page")
    return nl, url


def test_the_four_links_live_update_check_now_and_a_stopped_service(lab, tmp_path):
    from selenium.webdriver.common.by import By

    nl, url = service_with_page(lab, tmp_path)

    with chromium(lab) as driver:
        driver.get(url)
        wait_for(lambda: "Live" in text_of(driver, "#conn"), 10, "the live connection")
        ipv4 = card_text(driver, "Public IPv4")
        assert lab.wan_ip in ipv4 and "public" in ipv4 and "router" in ipv4, ipv4
        mapping = card_text(driver, "Mapping rdp")
        assert "TCP 3390 → 10.0.1.201:3389" in mapping and "present via" in mapping, mapping
        assert "lease ends" in mapping and "renews" in mapping and "the router confirmed it" in mapping, mapping
        ddns = card_text(driver, "DDNS home")
        assert lab.wan_ip in ddns and "rdp.home.example" in ddns, ddns
        wait_for(lambda: shows_knots_answer(lab, driver, lab.wan_ip), 5, "knot's record as the authoritative answer")
        probe = card_text(driver, "Probe rdp")
        assert "verified" in probe and "this host?" in probe and "yes:" in probe, probe
        service = card_text(driver, "Service")
        assert "running" in service, service
        assert lab.tsig_secret not in driver.page_source

        # An ISP reconnect: the page follows without a reload.
        driver.execute_script("window.natlinkMarker = 1;")
        t0 = time.monotonic()
        lab.ip_change("11.0.0.9")
        wait_for(lambda: "11.0.0.9" in card_text(driver, "Public IPv4"), 2, "the new address on the page")
        print(f"ip-change -> shown on the page: {time.monotonic() - t0:.3f} s")
        wait_for(lambda: "11.0.0.9" in card_text(driver, "DDNS home"), 10, "the new published address")
        wait_for(lambda: shows_knots_answer(lab, driver, "11.0.0.9"), 5, "knot's new record on the page")
        assert driver.execute_script("return window.natlinkMarker;") == 1  # the same page: no reload
        wait_for(lambda: "public-ip-changed" in text_of(driver, "#history"), 5, "the change in the history")
        assert "11.0.0.9" in text_of(driver, "#history")
        assert "mapping-add" in text_of(driver, "#history"), (nl.state("history"), nl.log)

        # A router reboot loses the mapping; the repair shows in the history.
        repairs = text_of(driver, "#history").count("mapping-add")
        assert repairs >= 1  # the first grant
        lab.router_reboot()
        wait_for(lambda: text_of(driver, "#history").count("mapping-add") > repairs, 15, "the repair in the history")

        # "Check now" runs a round at once (the schedules are 10 minutes long).
        clicked = time.time()
        driver.find_element(By.XPATH, "//button[text()='Check now']").click()
        wait_for(lambda: "check started" in text_of(driver, "#action-result"), 5, "the action's answer")
        wait_for(lambda: job_done(nl, "mappings", after=clicked) and job_done(nl, "probe", after=clicked), 15,
                 "the round the button started")
        wait_for(lambda: "check now (status page)" in card_text(driver, "Service"), 5, "the round on the page")

        # "Update now" asks the provider although the address did not change.
        before = (nl.state("ddns-home") or {}).get("last_attempt") or 0
        driver.find_element(By.XPATH, "//button[text()='Update home now']").click()
        wait_for(lambda: "update of home started" in text_of(driver, "#action-result"), 5, "the action's answer")
        wait_for(lambda: ((nl.state("ddns-home") or {}).get("last_attempt") or 0) > before, 10, "the forced update")
        wait_for(lambda: "update now: home" in card_text(driver, "Service"), 5, "the forced round on the page")

        # The service stops: the page says it lost natlink, not stale "ok".
        assert nl.stop()[0] == 0, nl.log
        wait_for(lambda: "Not connected to natlink" in text_of(driver, "#conn"), 5, "the lost connection shown")
        assert "stale" in (driver.find_element(By.TAG_NAME, "body").get_attribute("class") or "")
        driver.find_element(By.XPATH, "//button[text()='Check now']").click()  # nobody to answer: said so
        wait_for(lambda: "Failed: natlink did not answer" in text_of(driver, "#action-result"), 5, "the failure")
    assert "Traceback" not in nl.log


def test_after_a_restart_the_authoritative_answer_is_the_new_runs(lab, tmp_path):
    """The unchanged path keeps writes rare, but an answer kept by the previous run is saved again by the new
    run's first check: the page shows it as this run's, not "unverified — from an earlier run"."""
    nl, _ = service_with_page(lab, tmp_path)
    before = nl.state("ddns-home")
    assert before["hosts"][HOST]["authoritative"]["addresses"] == {"ipv4": knot_a(lab)} == {"ipv4": [lab.wan_ip]}
    assert nl.stop()[0] == 0, nl.log
    restarted = time.time()
    nl = start_natlink(lab, nl.config)
    try:
        wait_for(lambda: job_done(nl, "ddns", after=restarted), 20, "the new run's DDNS round")
        after = nl.state("ddns-home")
        assert after["last_attempt"] == before["last_attempt"]  # unchanged: nothing was sent to knot
        assert after["hosts"][HOST]["authoritative"]["at"] >= restarted
        url = f"http://127.0.0.1:{PORT}/"
        wait_for(lambda: page_up(lab, url), 10, "the status page")
        with chromium(lab) as driver:
            driver.get(url)
            wait_for(lambda: shows_knots_answer(lab, driver, lab.wan_ip), 5, "this run's authoritative answer")
    finally:
        nl.stop()
    assert "Traceback" not in nl.log


def test_a_lan_bind_needs_the_password_and_never_shows_it(lab, tmp_path):
    from selenium.webdriver.common.by import By

    lab.tcp_service("lan", 3389)
    start_reflector(lab)
    secret = "correct-horse-battery-staple"
    password = tmp_path / "web.password"
    password.write_text(secret + "\n")
    password.chmod(0o600)
    cfg = web_config(lab, tmp_path, f"{lab.lan_ip}:{PORT}", password)
    nl = start_natlink(lab, cfg)
    url = f"http://{lab.lan_ip}:{PORT}/"
    wait_for(lambda: page_up(lab, url), 15, "the status page on the LAN address")
    wait_for(lambda: job_done(nl, "ddns"), 20, "the first DDNS round")

    def api_status() -> int:
        try:
            return urllib.request.urlopen(url + "api/status", timeout=2).status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert lab.call("lan", api_status) == 401  # no facts without the password

    with chromium(lab, size=PHONE) as driver:
        driver.get(url)
        assert driver.current_url.endswith("/login")
        assert lab.wan_ip not in driver.page_source  # nothing of the state before the login
        field = driver.find_element(By.ID, "password")
        assert driver.find_element(By.CSS_SELECTOR, "label[for=password]").text
        field.send_keys("wrong")
        driver.find_element(By.XPATH, "//button[text()='Log in']").click()
        wait_for(lambda: "Wrong password" in driver.page_source, 5, "the refusal")
        assert lab.wan_ip not in driver.page_source

        driver.find_element(By.ID, "password").send_keys(secret)
        driver.find_element(By.XPATH, "//button[text()='Log in']").click()
        wait_for(lambda: lab.wan_ip in card_text(driver, "Public IPv4"), 5, "the page after the login")
        wait_for(lambda: "Live" in text_of(driver, "#conn"), 10, "the live connection")
        # the phone layout: one column, nothing wider than the screen
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        for source in (driver.page_source, driver.execute_script("return document.documentElement.outerHTML")):
            assert secret not in source and lab.tsig_secret not in source
        cookies = {c["name"]: c for c in driver.get_cookies()}
        assert cookies["natlink_session"]["httpOnly"] and secret not in json.dumps(cookies)

        # A new password value (and a reload) ends the session: the open page says so.
        password.write_text("a-new-password\n")
        nl.signal(signal.SIGHUP)
        wait_for(lambda: "Logged out" in text_of(driver, "#conn"), 10, "the ended session on the page")
    assert nl.stop()[0] == 0, nl.log
    assert secret not in nl.log


def test_without_javascript_the_page_shows_the_facts_and_the_forms_work(lab, tmp_path):
    from selenium.webdriver.common.by import By

    nl, url = service_with_page(lab, tmp_path)
    with chromium(lab, javascript=False) as driver:
        driver.get(url)
        assert lab.wan_ip in card_text(driver, "Public IPv4") and "verified" in card_text(driver, "Probe rdp")
        assert "reload the page to update it" in text_of(driver, "#conn")  # <noscript>: says it is not live
        clicked = time.time()
        driver.find_element(By.XPATH, "//button[text()='Check now']").click()  # a plain form post
        wait_for(lambda: job_done(nl, "probe", after=clicked), 15, "the round the form started")
        assert driver.current_url == url  # redirected back to the page
        driver.refresh()
        assert "check now (status page)" in card_text(driver, "Service")
    assert nl.stop()[0] == 0, nl.log


def test_behind_cgnat_with_ipv6_each_family_has_its_own_verdict(lab_factory, tmp_path):
    lab = lab_factory("cgnat-ipv6", lan2=False)
    cfg = write_config(lab, tmp_path, alerts=False, probe=False)
    cfg.write_text(cfg.read_text().replace('sources = ["router"]\n', 'sources = ["router"]\nipv6 = true\n', 1)
                   + f'web = "127.0.0.1:{PORT}"\n')
    nl = start_natlink(lab, cfg)
    wait_for(lambda: job_done(nl, "ddns"), 20, "the first DDNS round")
    url = f"http://127.0.0.1:{PORT}/"
    wait_for(lambda: page_up(lab, url), 10, "the status page")
    with chromium(lab) as driver:
        driver.get(url)
        wait_for(lambda: "Live" in text_of(driver, "#conn"), 10, "the live connection")
        ipv4, ipv6 = card_text(driver, "Public IPv4"), card_text(driver, "Public IPv6")
        assert "PROBLEM none" in ipv4 and "PROBLEM unknown" in ipv4 and "no source gave a public address" in ipv4, ipv4
        assert f"OK {lab.lan_ip6}" in ipv6 and "OK public" in ipv6 and "OK host" in ipv6, ipv6
        assert "All links work" not in text_of(driver, "#overall")
        # public_ip.ipv6 = true: the mapping also got an IPv6 pinhole, shown beside it
        wait_for(lambda: "opened via" in card_text(driver, "Pinhole rdp"), 10, "the pinhole on the page")
        assert f"[{lab.lan_ip6}]:" in card_text(driver, "Pinhole rdp")
    assert nl.stop()[0] == 0, nl.log
