"""The change window's states, the time left before the cutoff, and the run's duration estimate."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchestrator.plan import Rate, Window
from orchestrator.window import WindowState, estimate_duration, fits, seconds_until_cutoff, window_state

START = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(hours=2), cutoff=1800.0)  # last start 02:30Z, closes 03:00Z


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("minutes", "state"),
    [
        (-0.001, WindowState.NOT_OPEN),
        (0, WindowState.OPEN),
        (89.99, WindowState.OPEN),
        (90, WindowState.CLOSING),
        (119.99, WindowState.CLOSING),
        (120, WindowState.CLOSED),
        (10_000, WindowState.CLOSED),
    ],
)
def test_each_boundary_belongs_to_the_later_state(minutes: float, state: WindowState) -> None:
    """Open at not_before exactly, closing at not_after - cutoff exactly, closed at not_after exactly."""
    assert window_state(WINDOW, at(minutes)) is state


def test_only_an_open_window_lets_targets_start() -> None:
    """may_start is true for OPEN only."""
    assert [s for s in WindowState if s.may_start] == [WindowState.OPEN]


def test_no_window_is_always_open() -> None:
    """A plan without a window may start at any time and never reaches a cutoff."""
    assert window_state(None, at(0)) is WindowState.OPEN
    assert seconds_until_cutoff(None, at(0)) == math.inf
    assert fits(None, at(0), 1e9)


def test_states_compare_instants_across_offsets() -> None:
    """A `now` in another offset is compared as an instant: 02:00+01:00 is 01:00Z, the opening."""
    assert window_state(WINDOW, datetime(2026, 12, 3, 2, 0, tzinfo=timezone(timedelta(hours=1)))) is WindowState.OPEN


def test_seconds_until_cutoff_counts_down_to_zero() -> None:
    """The time left until last_start, and 0 once past it."""
    assert seconds_until_cutoff(WINDOW, at(0)) == 5400.0
    assert seconds_until_cutoff(WINDOW, at(89.5)) == 30.0
    assert seconds_until_cutoff(WINDOW, at(100)) == 0.0


def test_fits_counts_from_the_later_of_now_and_the_opening() -> None:
    """A run fits if, started now or at not_before (whichever is later), it ends by the cutoff."""
    assert fits(WINDOW, at(-600), 5400.0)  # starts at the opening: ends exactly at 02:30Z
    assert not fits(WINDOW, at(-600), 5400.1)
    assert fits(WINDOW, at(60), 1800.0)
    assert not fits(WINDOW, at(60), 1801.0)


# --- the estimate ------------------------------------------------------------------------------------------
def test_the_rate_bounds_a_wide_flat_fleet() -> None:
    """120 instances with one change each at 10/s: 120 listings + 120 PUTs at 10 per second is 24 s."""
    assert estimate_duration([1] * 120, Rate(10, 1.0), 10, 1, 30.0, 120) == 24.0


def test_the_longest_chain_bounds_a_deep_fleet() -> None:
    """One instance with 10 changes on one lane waits for 9 jobs of 60 s: 540 s, whatever the rate."""
    assert estimate_duration([10, 1, 1], Rate(1000, 1.0), 50, 1, 60.0, 3) == 540.0


def test_lanes_shorten_the_chain() -> None:
    """With per_instance 3, 10 changes run on lanes of 4, 3 and 3: the busiest waits for 3 jobs."""
    assert estimate_duration([10], Rate(1000, 1.0), 50, 3, 60.0, 1) == 180.0


def test_job_polls_count_against_the_rate() -> None:
    """Waiting for 9 jobs of 60 s polled every second costs 540 polls: 1 + 10 + 540 calls take 551 s at 1/s."""
    assert estimate_duration([10], Rate(1, 1.0), 10, 1, 60.0, 1, poll_interval=1.0) == 551.0
    assert estimate_duration([10], Rate(1, 1.0), 10, 1, 60.0, 1, poll_interval=5.0) == 540.0  # the chain: 9 x 60 s
    assert estimate_duration([10], Rate(1, 1.0), 10, 1, 60.0, 1) == 540.0  # one poll per wait unless told


def test_waiting_for_the_last_job_adds_one_job_per_chain() -> None:
    """wait_for_last_job waits for every change: 10 jobs on one lane."""
    assert estimate_duration([10], Rate(1000, 1.0), 50, 1, 60.0, 1, wait_for_last_job=True) == 600.0


def test_call_latency_bounds_through_concurrency() -> None:
    """With 0.5 s per call and 2 in flight, 200 listings and 200 PUTs take at least 100 s."""
    assert estimate_duration([1] * 200, Rate(1000, 1.0), 2, 1, 0.0, 200, call_seconds=0.5) == 100.0


def test_nothing_to_change_costs_only_the_listings() -> None:
    """Instances already at their goal (0 changes) cost only their listing calls."""
    assert estimate_duration([0, 0], Rate(1, 1.0), 10, 1, 60.0, 2) == 2.0
    assert estimate_duration([], Rate(1, 1.0), 10, 1, 60.0, 0) == 0.0


def test_a_zero_concurrency_is_refused() -> None:
    """concurrency and per_instance below 1 are programming errors."""
    with pytest.raises(ValueError, match="at least 1"):
        estimate_duration([1], Rate(1, 1.0), 0, 1, 1.0, 1)
