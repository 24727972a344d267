"""Screenshots of the status page for the README, taken from a real `natlink run` in the lab (root, Linux,
chromium + chromium-driver): phone and desktop layouts, after an ISP reconnect so the history has entries.

    sudo python bench/web_screenshots.py [--out docs/img]

Writes status-phone.png and status-desktop.png; prints how long the page took to show a WAN address change and
what one look at the state costs (an open page looks every 0.5 s).
Chromium runs inside the lab's LAN namespace and opens the page on that namespace's loopback only."""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "lab")]  # this checkout's natlink, and the lab helpers

from browser_support import DESKTOP, PHONE, card_text, chromium, text_of  # noqa: E402
from service_support import job_done, start_natlink, start_reflector, wait_for, write_config  # noqa: E402

from natlink.lab import Lab  # noqa: E402

PORT = 9878


def full_page(driver: Any, width: int, mobile: bool) -> bytes:
    """The whole page as PNG at this width (Chrome DevTools: the viewport grown to the content's height)."""
    height = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"]
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": int(height) + 1,
                                                                  "deviceScaleFactor": 1, "mobile": mobile})
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    return base64.b64decode(shot["data"])


def look_cost(cfg_path: Path, rounds: int = 200) -> None:
    """What an open page costs the service: one look at the state (every 0.5 s per open page) and the page's size."""
    from natlink.config import load_config
    from natlink.state import StateStore
    from natlink.web import render
    from natlink.web.server import collect

    cfg = load_config(str(cfg_path))
    store = StateStore(cfg.service.state_dir)
    t0 = time.perf_counter()
    for _ in range(rounds):
        view = collect(cfg, store)
    each = (time.perf_counter() - t0) / rounds
    print(f"one look at the state: {each * 1000:.2f} ms ({each / 0.5 * 100:.2f}% of one core per open page); "
          f"live part {len(render.main_part(view, 'x')) / 1024:.1f} KiB per update")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "img"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with Lab("normal") as lab, tempfile.TemporaryDirectory(prefix="natlink-shots-") as tmp:
        lab.tcp_service("lan", 3389)
        start_reflector(lab)
        cfg = write_config(lab, Path(tmp), alerts=False)
        cfg.write_text(cfg.read_text() + f'web = "127.0.0.1:{PORT}"\n')
        nl = start_natlink(lab, cfg)
        try:
            wait_for(lambda: job_done(nl, "probe") and job_done(nl, "ddns"), 30, "the first round")
            lab.ip_change("11.0.0.9")  # so the history shows a change
            wait_for(lambda: (nl.state("ddns-home") or {}).get("published", {}).get("ipv4") == "11.0.0.9", 15,
                     "DNS to follow")
            for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
                with chromium(lab, size=size) as driver:
                    driver.get(f"http://127.0.0.1:{PORT}/")
                    wait_for(lambda: "Live" in text_of(driver, "#conn"), 10, "the live connection")
                    if name == "desktop":
                        t0 = time.monotonic()
                        lab.ip_change("11.0.0.10")
                        wait_for(lambda: "11.0.0.10" in card_text(driver, "Public IPv4"), 10, "the change")
                        print(f"WAN address change -> shown on the page: {time.monotonic() - t0:.3f} s")
                        wait_for(lambda: "11.0.0.10" in card_text(driver, "DDNS home"), 10, "the DDNS card")
                    time.sleep(1.2)  # the ages tick once
                    path = out / f"status-{name}.png"
                    path.write_bytes(full_page(driver, size[0], mobile=name == "phone"))
                    print(f"{path} ({size[0]} px wide)")
            look_cost(cfg)
        finally:
            nl.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
