"""The change window and the run's duration estimate. Pure: "now" is always passed in.

A plan's `window` says when targets may start: from `not_before` until `cutoff` seconds before `not_after`
(`Window.last_start`). After that nothing new starts; targets in flight may run on until `not_after`.

    ──── NOT_OPEN ────┤ not_before ── OPEN ──┤ last_start ── CLOSING ──┤ not_after ── CLOSED ────

Every boundary belongs to the later state: at exactly `not_before` the window is open, at exactly
`last_start` it is closing (start nothing new), at exactly `not_after` it is closed.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from .plan import Rate, Window


class WindowState(enum.Enum):
    NOT_OPEN = "not_open"  # before not_before: start nothing (exit 5)
    OPEN = "open"  # targets may start
    CLOSING = "closing"  # past not_after - cutoff: start nothing new; in-flight targets finish
    CLOSED = "closed"  # past not_after

    @property
    def may_start(self) -> bool:
        return self is WindowState.OPEN


def window_state(window: Window | None, now: datetime) -> WindowState:
    """Where `now` (timezone-aware) falls in `window`; no window is always OPEN."""
    if window is None:
        return WindowState.OPEN
    if now < window.not_before:
        return WindowState.NOT_OPEN
    if now >= window.not_after:
        return WindowState.CLOSED
    if now >= window.last_start:
        return WindowState.CLOSING
    return WindowState.OPEN


def seconds_until_cutoff(window: Window | None, now: datetime) -> float:
    """Seconds from `now` until no new target may start (`last_start`): 0 once past it, inf without a window.

    Before the window opens this counts from `now`, not from `not_before`: with `window_state` NOT_OPEN the
    caller starts nothing anyway.
    """
    if window is None:
        return math.inf
    return max(0.0, (window.last_start - now).total_seconds())


def fits(window: Window | None, start: datetime, estimate: float) -> bool:
    """Whether a run starting at `start` (or at `not_before`, if later) and lasting `estimate` seconds starts
    its last target before the cutoff. Conservative: it asks the whole run, not only its starts, to end there."""
    if window is None:
        return True
    begin = max(start, window.not_before)
    return begin + timedelta(seconds=estimate) <= window.last_start


def estimate_duration(
    chain_lengths: Sequence[int],
    rate: Rate,
    concurrency: int,
    per_instance: int,
    job_seconds: float,
    listings: int,
    *,
    poll_interval: float | None = None,
    call_seconds: float = 0.0,
    wait_for_last_job: bool = False,
) -> float:
    """A lower-bound-ish estimate, in seconds, of how long changing the fleet takes.

    `chain_lengths` holds, per instance, how many of its proxies must change (targets already at their goal
    and instances with nothing to change may be left out or given as 0). `listings` is how many listing pages
    the run reads (at least one per instance). `job_seconds` is how long one service job takes.

    The model: the run cannot be faster than any of its three bottlenecks, so it takes at least the largest:

    * the rate: every call passes the rate governor, so `calls / rate` seconds, where
      calls = listings + one PUT per change + the job polls. An instance with n changes over
      L = min(per_instance, n) lanes waits for n - L jobs (a lane waits for a job only before its next change),
      each wait taking ceil(job_seconds / poll_interval) polls (one poll when `poll_interval` is not given);
      with `wait_for_last_job` every change is waited for (n waits);
    * the concurrency: `calls * call_seconds / concurrency` when the typical seconds of one call are known
      (0 by default, as the service's latency is not known in advance);
    * the longest chain: an instance's changes run one lane after another, so the busiest lane of the busiest
      instance takes (ceil(n / L) - 1) * job_seconds (ceil(n / L) * job_seconds with `wait_for_last_job`),
      plus `call_seconds` for its listing and each of its PUTs.

    Retries, throttling and slow jobs only add time: treat the result as "at least this long", and leave
    room for them when comparing it with a window.
    """
    if concurrency < 1 or per_instance < 1:
        raise ValueError("concurrency and per_instance must be at least 1")
    polls_per_wait = max(1, math.ceil(job_seconds / poll_interval)) if poll_interval else 1
    puts = waits = 0
    longest_chain = 0.0
    for n in chain_lengths:
        if n <= 0:
            continue
        lanes = min(per_instance, n)
        per_lane = math.ceil(n / lanes)
        puts += n
        waits += n if wait_for_last_job else n - lanes
        jobs_waited = per_lane if wait_for_last_job else per_lane - 1
        longest_chain = max(longest_chain, jobs_waited * job_seconds + (per_lane + 1) * call_seconds)
    calls = listings + puts + waits * polls_per_wait
    by_rate = calls / rate.per_second
    by_concurrency = calls * call_seconds / concurrency
    return max(by_rate, by_concurrency, longest_chain)
