"""The governor: the one gate every HTTP call passes, so the configured rate is a ceiling for the whole run.

The rate is a `SlotLimiter`: starts on an even grid of T/N-second slots, each slot reserved at call time, so a
waiter woken late does not push every later start back; and a log of the last N actual starts, so that no
window of T seconds ever holds more than N starts, start-up and late wake-ups included. aiolimiter was the
first choice and is not used: `AsyncLimiter(N, T)` lets up to 2×N through in the first window after idle
(STYLE.md), and as a bucket of one (`AsyncLimiter(1, T/N)`), the only shape with a strict ceiling, it forgets
every wake-up's lateness: measured 0.84 R at 200/s (benchmarks/README.md), against 1.00 R for slots.

Concurrency is capped here too, with our own semaphore at or below the connector's limit: aiohttp's total
timeout starts while a request waits for a pooled connection, so waiting must happen before the request.

Until one answer has proven the credentials (any status but 401), calls go one at a time: a wrong AK/SK sent
by `concurrency` calls at once would be refused that many times, and the gateway locks a key after 5
failures (contract §6). With the probe, a bad key costs exactly one refused request.

Throttling (429) is the whole run's business, not one worker's: it pauses every dispatch until the
Retry-After (or a backoff) has passed, and with `adaptive` it cuts the effective rate (AIMD: ×0.7 per 429,
at most once a second; +10% of the configured rate after every 5 s without a 429, never above it). The
effective rate is then enforced by virtual scheduling (each call reserves the next 1/rate slot) under the
configured ceiling, and every change is kept in `trace` for the report.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import structlog

from .errors import TransportError
from .plan import Rate


@dataclass(slots=True)
class AdaptiveRate:
    """The effective rate and the pause, as pure state: every method takes `now` (seconds, monotonic)."""

    configured: float  # calls per second: the plan's ceiling
    adaptive: bool = True
    decrease: float = 0.7
    increase_every: float = 5.0
    floor: float = 0.0  # the lowest effective rate; 0: a tenth of the configured rate (set in __post_init__)
    effective: float = 0.0
    paused_until: float = 0.0
    throttles: int = 0
    trace: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, calls/s)
    _start: float | None = None
    _last_cut: float = float("-inf")
    _last_change: float = 0.0

    def __post_init__(self) -> None:
        self.effective = self.configured
        # A floor keeps a run that meets steady background throttling (another tool on the same account)
        # moving: the pauses on each 429 already keep it from hammering.
        self.floor = self.floor or self.configured / 10

    def _since_start(self, now: float) -> float:
        if self._start is None:
            self._start = now
            self._last_change = now
        return round(now - self._start, 3)

    def throttled(self, now: float, pause: float) -> None:
        """A 429: pause everyone for `pause` seconds, and (adaptive) cut the rate, once per second at most."""
        since = self._since_start(now)
        self.throttles += 1
        self.paused_until = max(self.paused_until, now + max(pause, 0.0))
        if self.adaptive and now - self._last_cut >= 1.0:
            self._last_cut = self._last_change = now
            self.effective = max(self.floor, self.effective * self.decrease)
            self.trace.append((since, round(self.effective, 3)))

    def succeeded(self, now: float) -> None:
        """A call that was not throttled: after `increase_every` seconds of those, grow back toward the ceiling."""
        since = self._since_start(now)
        if self.effective < self.configured and now - self._last_change >= self.increase_every:
            self._last_change = now
            self.effective = min(self.configured, self.effective + self.configured * 0.1)
            self.trace.append((since, round(self.effective, 3)))

    @property
    def below_ceiling(self) -> bool:
        return self.effective < self.configured


@dataclass(slots=True)
class Start:
    """One admitted call in the limiter's log: when it was let through and, once known, when its request left.

    The server counts arrivals, and arrivals follow sends, not admissions: after an event-loop stall the calls
    let through together leave one after another over several milliseconds (measured: a 5 ms margin was not
    enough at 200/s, benchmarks/README.md). So the log uses the send time as soon as the API module reports it.
    """

    admitted: float
    sent: float | None = None

    @property
    def moment(self) -> float:
        return self.admitted if self.sent is None else self.sent

    def mark_sent(self, now: float) -> None:
        if self.sent is None:  # the first time its headers left: a re-send is a new arrival the log cannot undo
            self.sent = max(now, self.admitted)


class SlotLimiter:
    """At most `rate.count` starts in any window of `rate.period` seconds, paced evenly. The clock is the
    caller's (`reserve`, `earliest` and `admit` take `now`), so the schedule itself is tested without sleeping."""

    def __init__(self, rate: Rate) -> None:
        if rate.count <= 0 or rate.period <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.count = rate.count
        self.period = rate.period
        self.interval = rate.period / rate.count
        self._last_slot: float | None = None
        self._starts: deque[Start] = deque(maxlen=rate.count)

    def reserve(self, now: float) -> float:
        """The slot of the next call: one interval after the previous slot, never before now, and never more
        than one interval of idle time banked (so no burst after a pause)."""
        slot = now if self._last_slot is None else max(now - self.interval, self._last_slot) + self.interval
        self._last_slot = slot
        return slot

    def earliest(self, now: float) -> float:
        """When a call ready at `now` may start so that the last `count` starts span at least `period`.

        A start's moment is its send time once known, else its admission (a lower bound of it). The earliest of
        the logged moments decides; since moments are never before admissions, which are in order, the scan
        stops at the first admission past the earliest moment found (one or two entries, as a rule).
        """
        if len(self._starts) < self.count:
            return now
        oldest = float("inf")
        for start in self._starts:
            if start.admitted >= oldest:
                break
            oldest = min(oldest, start.moment)
        # Some time to spare: the server sees arrivals, and arrivals jitter by the network's few milliseconds
        # (measured: +5% over the ceiling at 200/s with a quarter interval only). The larger of a quarter
        # interval and 5 ms, paid once per `count` starts: under 1% of the rate from 20/s to 200/s.
        return max(now, oldest + self.period + max(self.interval / 4, 0.005))

    def admit(self, now: float) -> Start:
        start = Start(now)
        self._starts.append(start)
        return start


log = structlog.get_logger("orchestrator")


def strict_limiter(rate: Rate) -> SlotLimiter:
    """A limiter that never admits more than `rate.count` calls in any window of `rate.period` seconds."""
    return SlotLimiter(rate)


class Governor:
    """Admits calls: at most `concurrency` in flight, started no faster than `rate`."""

    def __init__(self, rate: Rate, concurrency: int, *, adaptive: bool = True) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.rate = rate
        self.concurrency = concurrency
        self._limiter = strict_limiter(rate)
        self.pacing = AdaptiveRate(rate.per_second, adaptive=adaptive)
        self._next_slot = 0.0
        self._slots = asyncio.Semaphore(concurrency)
        self._probe = asyncio.Lock()
        self._closed = asyncio.Event()
        self.proven = asyncio.Event()  # set by the API module on the first answer that is not a 401
        self.admitted = 0

    def is_closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Admit nothing more: calls waiting for their turn raise `TransportError("not_sent")`, never sent."""
        self._closed.set()

    @asynccontextmanager
    async def call(self) -> AsyncIterator[Start]:
        """Hold one call slot; the body starts only once the rate allows it (and the governor is open). The
        body gets its `Start`, to `mark_sent` when its request leaves (the API module's trace does)."""
        async with self._slots:
            self._check_open()
            probing = False
            if not self.proven.is_set():
                await self._probe.acquire()
                probing = not self.proven.is_set()
                if not probing:
                    self._probe.release()
            try:
                loop = asyncio.get_running_loop()
                while True:  # a 429 may arrive while this call waits for its turn: then wait out the pause too
                    await self._paced()
                    start = await self._rate_turn()
                    if loop.time() >= self.pacing.paused_until:
                        break
                self.admitted += 1
                yield start
            finally:
                if probing:
                    self._probe.release()

    async def _rate_turn(self) -> Start:
        """Wait for this call's slot, then for the sliding window; closing the governor ends the wait at once."""
        loop = asyncio.get_running_loop()
        limiter = self._limiter
        await self._sleep_until(limiter.reserve(loop.time()))
        while (start := limiter.earliest(loop.time())) > loop.time():
            await self._sleep_until(start)
        return limiter.admit(loop.time())

    async def _sleep_until(self, moment: float) -> None:
        delay = moment - asyncio.get_running_loop().time()
        if delay > 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)
        self._check_open()

    def throttled(self, pause: float) -> None:
        self.pacing.throttled(asyncio.get_running_loop().time(), pause)
        log.info("throttled (429): every call waits", pause_s=round(pause, 3), rate_now=round(self.pacing.effective, 2))

    def succeeded(self) -> None:
        self.pacing.succeeded(asyncio.get_running_loop().time())

    async def _paced(self) -> None:
        """Wait out a pause and, while the effective rate is below the ceiling, this call's reserved slot."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        pacing = self.pacing
        if now >= pacing.paused_until and not pacing.below_ceiling:
            return
        slot = max(now, pacing.paused_until, self._next_slot)
        self._next_slot = slot + (1.0 / pacing.effective if pacing.below_ceiling else 0.0)
        if slot > now:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), slot - now)
        self._check_open()

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise TransportError("not_sent", "the run is stopping: this call was not sent", sent=False)
