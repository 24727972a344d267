"""NAT idle-timeout measurement: the schedule and the bracket/estimate/recommendation (pure)."""

from __future__ import annotations

import pytest

from natlink.doctor.nat_timeout import ALIVE, CLOSED, RESET, SILENT, Sample, schedule, summarize


def test_schedule_grows_geometrically_and_ends_at_the_maximum() -> None:
    times = schedule(60)
    assert times[0] == 2.0 and times[-1] == 60.0
    assert all(b / a <= 1.26 for a, b in zip(times, times[1:-1]))
    assert times == sorted(times)
    assert len(schedule(600)) < 64  # the reflector's per-client hold limit
    assert schedule(1) == [1.0]
    assert schedule(0) == []


def _samples(timeout: float, maximum: float = 600) -> list[Sample]:
    out = []
    for t in schedule(maximum):
        out.append(Sample(t, ALIVE if t < timeout else SILENT))
        if t >= timeout:
            break
    return out


@pytest.mark.parametrize("timeout", [5, 20, 30, 60, 117, 300, 590])
def test_estimate_within_15_percent_and_keepalive_below(timeout: float) -> None:
    result = summarize(_samples(timeout), 600)
    assert result.estimate is not None
    assert abs(result.estimate - timeout) / timeout < 0.15
    assert result.alive_max is not None and result.recommended < result.alive_max
    assert f"~{result.estimate:.0f} s" in result.summary()


def test_nothing_died_up_to_the_maximum() -> None:
    result = summarize([Sample(t, ALIVE) for t in schedule(30)], 30)
    assert result.estimate is None and result.dead_min is None
    assert "whole 30 s" in result.summary()
    assert result.recommended < 30


@pytest.mark.parametrize("outcome", [SILENT, RESET, CLOSED])
def test_any_non_echo_counts_as_forgotten_and_later_samples_are_ignored(outcome: str) -> None:
    result = summarize([Sample(2, ALIVE), Sample(4, outcome), Sample(8, ALIVE)], 60)
    assert (result.alive_max, result.dead_min) == (2, 4)


def test_dead_at_the_first_sample() -> None:
    result = summarize([Sample(2, SILENT)], 60)
    assert result.alive_max is None and result.dead_min == 2 and result.recommended == 1
    assert "within 2.0 s" in result.summary()


def test_json() -> None:
    doc = summarize(_samples(20, 60), 60, elapsed=26.5).to_json()
    assert doc["recommended_keepalive"] == 10 and 17 < doc["estimate"] < 23
    assert doc["samples"][-1]["outcome"] == SILENT
