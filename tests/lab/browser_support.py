"""Headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) inside a lab namespace, so the
browser reaches only the lab and that namespace's loopback. Not a test module."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PHONE = (390, 844)
DESKTOP = (1280, 900)

# Nothing but the page: no background requests, no name lookups (pages are opened by IP address).
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
         "--disable-client-side-phishing-detection", "--no-pings", "--dns-prefetch-disable",
         "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication",
         "--hide-scrollbars")


@contextlib.contextmanager
def chromium(lab: Any, host: str = "lan", size: tuple[int, int] = DESKTOP, javascript: bool = True) -> Iterator[Any]:
    """A Selenium driver whose chromedriver and Chromium run in ``host``'s namespace. The calling thread stays in
    that namespace until the block ends (the driver's own connections to chromedriver are made from it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="natlink-chromium-") as profile, lab.netns(host):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        # Every name fails to resolve except the two addresses pages are opened at (IP literals go through
        # the same rules): Chromium never asks a resolver.
        rules = f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE {lab.lan_ip}"
        for flag in (*FLAGS, rules, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"):
            options.add_argument(flag)
        if not javascript:
            options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
        # executable_path given: Selenium Manager (which would download a driver) is never asked.
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


def card_text(driver: Any, title_start: str) -> str:
    """The visible text of the first card whose title starts with title_start ("" when there is none). Read in
    one script call: live updates replace the cards at any moment, so element handles would go stale."""
    return str(driver.execute_script(
        "for (const c of document.querySelectorAll('article.card')) {"
        "  if ((c.dataset.card || '').startsWith(arguments[0])) return c.innerText; }"
        "return '';", title_start))


def text_of(driver: Any, css: str) -> str:
    """The visible text of the first element matching css ("" when there is none), in one script call."""
    return str(driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
                                     css))
