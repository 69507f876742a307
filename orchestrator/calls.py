"""One call with retries: the retry policy (`retrying.py`) applied to the `ProxyApi`, with the run's statistics.

Read-only calls (listings, job polls, job lists) go through `Caller.call`; the engine drives PUTs itself with
`Caller.attempt`, since a lost PUT answer needs a state check before anything is sent again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .api import Reply
from .errors import AuthError, TransportError
from .plan import RetrySettings
from .retrying import Failure, RetryBudget, decide, parse_retry_after

Send = Callable[[], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class CallResult:
    """The last answer of a call after retries: a reply, or the transport error of the last attempt."""

    reply: Reply | None
    error: TransportError | None
    attempts: int
    wire: int

    @property
    def ok(self) -> bool:
        return self.reply is not None and self.reply.ok

    def describe(self) -> tuple[int | None, str | None, str | None]:
        """(http_status, error_code, error_msg) for the report."""
        if self.reply is not None:
            return self.reply.status, self.reply.error_code, self.reply.error_msg
        assert self.error is not None
        return None, f"transport.{self.error.kind}", self.error.detail

    def failure(self) -> str:
        """Why the call failed, in one line: `HTTP 404 DBS.200002: message`, or `transport.timeout: detail`."""
        status, code, msg = self.describe()
        head = " ".join(part for part in (f"HTTP {status}" if status is not None else None, code) if part)
        return f"{head}: {msg}" if msg else head


@dataclass(slots=True)
class CallStats:
    calls: int = 0
    retries: int = 0
    listings: int = 0
    job_polls: int = 0
    job_lists: int = 0
    puts: int = 0
    throttled: int = 0
    per_route_wire: dict[str, int] = field(default_factory=dict)


class Caller:
    def __init__(
        self,
        retry: RetrySettings,
        *,
        stats: CallStats,
        is_stopping: Callable[[], bool],
        on_auth_failure: Callable[[str], None],
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        budget: RetryBudget | None = None,
    ) -> None:
        self._retry = retry
        self.budget = budget or RetryBudget()
        self.stats = stats
        self._is_stopping = is_stopping
        self._on_auth_failure = on_auth_failure
        self._rng = rng or random.Random()
        self.sleep = sleep
        self._now = wall_clock

    async def call(self, route: str, send: Send) -> CallResult:
        """A read-only call, retried per the policy (a stopping run retries only job polls). Never a PUT."""
        attempts = wire = 0
        while True:
            attempts += 1
            reply, error = await self.attempt(send)
            wire += reply.wire if reply is not None else error.wire if error is not None else 0
            if reply is not None and reply.ok:
                return CallResult(reply, None, attempts, wire)
            retry, delay = self.decide(attempts, self.failure(reply, error))
            if not retry or (self._is_stopping() and route != "job"):
                return CallResult(reply, error, attempts, wire)
            self.stats.retries += 1
            await self.sleep(delay)

    def decide(self, attempts: int, failure: Failure) -> tuple[bool, float]:
        """Retry (and after how long)? The policy decides; the run's retry budget must also pay for it."""
        decision = decide(attempts, failure, self._retry, self._rng)
        if decision.retry and not self.budget.spend(failure):
            return False, 0.0
        return decision.retry, decision.delay

    async def attempt(self, send: Send) -> tuple[Reply | None, TransportError | None]:
        """One attempt: its reply or transport error. A final 401 (or credentials that cannot be had) is
        reported to `on_auth_failure`: the API module already made the one refresh that can help."""
        self.stats.calls += 1
        try:
            reply = await send()
        except TransportError as exc:
            return None, exc
        except AuthError as exc:  # the credentials could not even be obtained (e.g. IAM refused the login)
            self._on_auth_failure(str(exc))
            return Reply(401, {"error_code": "auth_failed", "error_msg": str(exc)}, wire=0), None
        if reply.ok:
            self.budget.refund()
        elif reply.status == 429:
            self.stats.throttled += 1
        elif reply.status == 401:
            # Hammering on with refused credentials would only lock an AK (contract §6).
            self._on_auth_failure(f"HTTP 401 {reply.error_code or ''}: {reply.error_msg or ''}".strip())
        return reply, None

    def failure(self, reply: Reply | None, error: TransportError | None) -> Failure:
        if reply is None:
            assert error is not None
            return Failure(transport=error.kind)
        return Failure(
            status=reply.status,
            error_code=reply.error_code,
            retry_after=parse_retry_after(reply.retry_after, self._now()),
        )
