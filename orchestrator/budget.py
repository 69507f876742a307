"""The failure budget (plan `stop`): stop starting targets before failures can exceed what is allowed. Pure.

The budget is a number of failures A:

* `max_failures: N` allows N failures;
* `max_failures: "P%"` allows floor(P% of the plan's targets), but at least 1: 3% of 200 targets is 6, 3% of
  150 is 4 (4.5 rounded down: "at most P%" is never exceeded), 3% of 20 is 1 (with 0 no target could start).

**Never overshoot.** A target in flight may still fail, so a new target starts only while the targets in flight
are fewer than the failures still allowed:

    may_start(in_flight)  ⇔  not exhausted  and  in_flight < A - failures

Then even if every target in flight fails, failures reach at most A. With A = 3 and 50 workers, at most 3
targets run at once while no failure has happened, 2 after the first failure, and so on; successes do not
widen the gap (they free a slot, nothing more). The cost is concurrency: at most A - failures targets in
flight, whatever `limits.concurrency` says. Once failures reach A the budget is exhausted (exit 6).

**min_sample** (percent budgets only; the plan refuses it with an absolute N) adds an early stop on the
failure *rate*: once at least `min_sample` targets have settled, the budget is also exhausted as soon as
failures exceed P% of the settled targets. Before that sample is reached only the cap A (P% of all targets)
applies, so small early samples (1 failure of the first 2) do not stop the run, and overshoot stays impossible
throughout: the cap always holds, the rate rule can only stop earlier. After a rate stop, the targets still in
flight finish and may fail: the final rate may end above P%, but failures never exceed A.

Liveness: `may_start(0)` is true unless the budget is exhausted, so a caller that waits for the next
`record` whenever `may_start` says no (and nothing else) never waits forever.

Asyncio callers must check `may_start` and count the new target as in flight with no `await` in between.
"""

from __future__ import annotations

import math
from fractions import Fraction

from .plan import Percent, StopSettings


class FailureBudget:
    """Counts settled targets and failures against a plan's `stop` settings (None: no budget)."""

    def __init__(self, stop: StopSettings | None, total: int) -> None:
        self.stop = stop
        self.total = total
        self.failures = 0
        self.settled = 0
        self.allowed_failures: int | None = _allowed(stop, total)

    @property
    def remaining(self) -> int | None:
        """Failures still allowed (never negative), or None without a budget."""
        if self.allowed_failures is None:
            return None
        return max(0, self.allowed_failures - self.failures)

    def record(self, failed: bool) -> None:
        """One target settled: a failure (failed, unknown, ...) or not (submitted, unchanged, ...)."""
        self.settled += 1
        if failed:
            self.failures += 1

    def may_start(self, in_flight: int) -> bool:
        """Whether one more target may start while `in_flight` targets run (none of which has settled)."""
        remaining = self.remaining
        if remaining is None:
            return True
        return not self.exhausted and in_flight < remaining

    @property
    def exhausted(self) -> bool:
        """True once failures reached the budget, or (after min_sample) the failure rate went above P%."""
        return self.reason is not None

    @property
    def reason(self) -> str | None:
        """Why the budget stopped the run, in one line for the log and the report; None while it has not."""
        if self.stop is None or self.allowed_failures is None:
            return None
        limit = self.stop.max_failures
        if self.failures >= self.allowed_failures:
            of = f" ({limit} of {self.total} targets)" if isinstance(limit, Percent) else ""
            return (
                f"failure budget spent: {self.failures} failures, {self.allowed_failures} allowed by "
                f"stop.max_failures {limit}{of}"
            )
        if isinstance(limit, Percent) and self._rate_exceeded(limit):
            share = 100 * self.failures / self.settled
            return (
                f"failure rate {self.failures}/{self.settled} ({share:.3g}%) is above stop.max_failures {limit} "
                f"after {self.settled} settled targets (min_sample {self.stop.min_sample})"
            )
        return None

    def _rate_exceeded(self, limit: Percent) -> bool:
        assert self.stop is not None
        sample = self.stop.min_sample
        if sample <= 0 or self.settled < sample:
            return False
        return self.failures * 100 > _exact(limit) * self.settled

    def __repr__(self) -> str:
        return (
            f"FailureBudget(allowed={self.allowed_failures}, failures={self.failures}, settled={self.settled}, "
            f"total={self.total})"
        )


def _allowed(stop: StopSettings | None, total: int) -> int | None:
    if stop is None:
        return None
    limit = stop.max_failures
    if isinstance(limit, Percent):
        return max(1, math.floor(_exact(limit) * total / 100))
    return limit


def _exact(percent: Percent) -> Fraction:
    """The percent as written ("0.1" is 1/10, not the float nearest to it): 3% of 200 is exactly 6."""
    return Fraction(repr(percent.value))
