"""The live progress line on a terminal. Loaded only when stderr is a terminal: cron runs never import it.

One line, redrawn in place four times a second:
    apply  412/1000 targets  41%  |  18.9/s of 20/s  |  3 failing  |  ETA 31s  |  window closes in 1h02m
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from .report import FAILING_OUTCOMES, Outcome, TargetOutcome

REDRAW = 0.25  # seconds
RATE_WINDOW = 5.0  # seconds the "rate now" looks back


def human_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    def __init__(
        self,
        stream: TextIO,
        *,
        verb: str,
        configured_rate: float,
        window_closes: datetime | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._verb = verb
        self._total: Callable[[], int] = lambda: 0
        self._calls: Callable[[], int] = lambda: 0
        self._configured = configured_rate
        self._window_closes = window_closes
        self._clock = clock
        self._started = clock()
        self._latest: dict[tuple[str, str, str], Outcome] = {}
        self._samples: deque[tuple[float, int]] = deque()
        self._width = 0

    def bind(self, *, total: Callable[[], int], calls: Callable[[], int]) -> None:
        """Where the counts come from: the run's targets so far, and its API calls."""
        self._total, self._calls = total, calls

    def settled(self, outcome: TargetOutcome) -> None:
        self._latest[(outcome.project_id, outcome.instance_id, outcome.proxy_id)] = outcome.outcome

    def line(self) -> str:
        """The progress line now (pure but for the injected clock and counters)."""
        now = self._clock()
        calls = self._calls()
        self._samples.append((now, calls))
        while len(self._samples) > 1 and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()
        first_t, first_calls = self._samples[0]
        # At least a second of history: a quarter-second sample would show the limiter's steps as jitter.
        rate = (calls - first_calls) / max(now - first_t, 1.0)
        done = len(self._latest)
        total = max(self._total(), done, 1)
        failing = sum(1 for o in self._latest.values() if o in FAILING_OUTCOMES)
        parts = [
            f"{self._verb}  {done}/{total} targets  {100 * done // total}%",
            f"{rate:.1f}/s of {self._configured:g}/s",
        ]
        if failing:
            parts.append(f"{failing} failing")
        elapsed = now - self._started
        if 0 < done < total and elapsed > 1:
            parts.append(f"ETA {human_duration(elapsed / done * (total - done))}")
        if self._window_closes is not None:
            left = (self._window_closes - datetime.now(UTC)).total_seconds()
            parts.append(f"window closes in {human_duration(left)}" if left > 0 else "window closed")
        return "  |  ".join(parts)

    def draw(self) -> None:
        text = self.line()
        padding = " " * max(0, self._width - len(text))
        self._width = len(text)
        self._stream.write(f"\r{text}{padding}")
        self._stream.flush()

    def clear(self) -> None:
        self._stream.write("\r" + " " * self._width + "\r")
        self._stream.flush()

    async def run(self) -> None:
        try:
            while True:
                self.draw()
                await asyncio.sleep(REDRAW)
        finally:
            self.clear()
