"""The page's colours meet WCAG 2 AA contrast (4.5:1 for text) in the light and the dark scheme, read from the
shipped stylesheet itself."""

from __future__ import annotations

import re
from importlib import resources

import pytest

CSS = resources.files("natlink.web").joinpath("static", "page.css").read_text()
# (text, background) pairs the stylesheet puts together
PAIRS = [("fg", "bg"), ("fg", "card"), ("muted", "bg"), ("muted", "card"), ("good", "good-bg"), ("bad", "bad-bg"),
         ("warn", "warn-bg"), ("good", "card"), ("bad", "card"), ("warn", "card"), ("accent", "card"),
         ("accent", "bg")]


def scheme(dark: bool) -> dict[str, str]:
    blocks = re.findall(r":root\s*\{([^}]*)\}", CSS)
    light = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", blocks[0]))
    return {**light, **dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", blocks[1]))} if dark else light


def luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("text, background", PAIRS)
def test_text_contrast_is_at_least_aa(dark, text, background):
    colours = scheme(dark)
    assert contrast(colours[text], colours[background]) >= 4.5, (text, background, colours[text], colours[background])


def test_button_text_on_the_accent():
    assert contrast("#ffffff", scheme(False)["accent"]) >= 4.5
    assert contrast("#0b1a2e", scheme(True)["accent"]) >= 4.5
