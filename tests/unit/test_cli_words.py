"""Plain words in output: durations as a person says them ("renews in 29 min", not "3563 s left")."""

from __future__ import annotations

import pytest

from natlink.durations import plain_duration


@pytest.mark.parametrize("seconds,text", [
    (0, "0 s"), (42, "42 s"), (60, "1 min"), (1740, "29 min"), (3600, "1 h"), (3900, "1 h 5 min"),
    (86400, "1 day"), (259200 + 7200, "3 days 2 h"), (-5, "0 s"),
])
def test_plain_duration(seconds: int, text: str) -> None:
    assert plain_duration(seconds) == text
