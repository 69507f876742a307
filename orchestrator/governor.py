"""The governor: the one gate every HTTP call passes, so the configured rate is a ceiling for the whole run.

aiolimiter's `AsyncLimiter(N, T)` starts with an empty bucket and lets up to 2×N through in the first window
after idle (STYLE.md, measured). A bucket of size 1 that leaks one request every T/N seconds never lets more
than N requests start in any half-open window of T seconds (N + 1 in a closed one), start-up included.

Concurrency is capped here too, with our own semaphore at or below the connector's limit: aiohttp's total
timeout starts while a request waits for a pooled connection, so waiting must happen before the request.

Until one answer has proven the credentials (any status but 401), calls go one at a time: a wrong AK/SK sent
by `concurrency` calls at once would be refused that many times, and the gateway locks a key after 5
failures (contract §6). With the probe, a bad key costs exactly one refused request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter

from .errors import TransportError
from .plan import Rate


def strict_limiter(rate: Rate) -> AsyncLimiter:
    """A limiter that never admits more than `rate.count` calls in any window of `rate.period` seconds."""
    if rate.count <= 0 or rate.period <= 0:
        # aiolimiter divides by the period and happily accepts a negative one: refuse both here.
        raise ValueError(f"rate must be positive, got {rate}")
    return AsyncLimiter(1, rate.period / rate.count)


class Governor:
    """Admits calls: at most `concurrency` in flight, started no faster than `rate`."""

    def __init__(self, rate: Rate, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.rate = rate
        self.concurrency = concurrency
        self._limiter = strict_limiter(rate)
        self._slots = asyncio.Semaphore(concurrency)
        self._probe = asyncio.Lock()
        self._closed = asyncio.Event()
        self.proven = asyncio.Event()  # set by the API module on the first answer that is not a 401
        self.admitted = 0

    def close(self) -> None:
        """Admit nothing more: calls waiting for their turn raise `TransportError("not_sent")`, never sent."""
        self._closed.set()

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        """Hold one call slot; the body starts only once the rate allows it (and the governor is open)."""
        async with self._slots:
            self._check_open()
            probing = False
            if not self.proven.is_set():
                await self._probe.acquire()
                probing = not self.proven.is_set()
                if not probing:
                    self._probe.release()
            try:
                await self._rate_turn()
                self.admitted += 1
                yield
            finally:
                if probing:
                    self._probe.release()

    async def _rate_turn(self) -> None:
        if self._limiter.has_capacity():
            await self._limiter.acquire()
            return
        # A wait is coming: let close() end it at once, not when the waiter's turn would have come.
        turn = asyncio.ensure_future(self._limiter.acquire())
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({turn, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not turn.done():
                turn.cancel()
        self._check_open()

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise TransportError("not_sent", "the run is stopping: this call was not sent", sent=False)
