"""The retry policy: which failures are worth another attempt, and how long to wait first. Pure.

Contract §8/§10 and the issue decide what is retryable:
  * 500, 502, 503, 504 (DBS.05000000, APIGW.0601/0613, gateway backend errors);
  * 429 APIGW.0308 throttling, honouring Retry-After (seconds or an HTTP date);
  * 409 "instance busy" codes (DBS.200019 and the codes Huawei's own Terraform provider retries);
  * transport failures: connect errors, dropped connections, timeouts.
Everything else (400, 401, 403, 404, other 409s) is final: retrying it cannot help and may lock a key.

Backoff is capped exponential with full jitter (AWS architecture blog "Exponential Backoff And Jitter"):
sleep = uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1))). The random source and "now" are
passed in, so schedules are asserted exactly in tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

from .plan import RetrySettings

RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})

# Contract §8: DBS.200019 "Another operation is being performed on the DB instance"; the other codes are the
# ones terraform-provider-huaweicloud's TaurusDB `retryErrCodes` retries on 409 (their messages are [UNK]).
BUSY_CODES: Final = frozenset({"DBS.200019", "DBS.201014", "DBS.201015", "DBS.200047", "DBS.05000084", "DBS.212033"})

# A Retry-After longer than this is not believed blindly: a change window is usually an hour or two, and a
# misconfigured gateway must not park the run for a day. Five minutes still honours every sane value.
MAX_RETRY_AFTER: Final = 300.0


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong with one attempt, as far as the retry policy cares."""

    status: int | None = None  # HTTP status, None for a transport failure
    error_code: str | None = None
    transport: str | None = None  # "connect" | "timeout" | "dropped" | "protocol"
    retry_after: float | None = None  # seconds, already parsed

    @property
    def throttled(self) -> bool:
        return self.status == 429


@dataclass(frozen=True, slots=True)
class Decision:
    retry: bool
    delay: float  # seconds to wait before the next attempt (0 when not retrying)
    reason: str


def is_retryable(failure: Failure) -> bool:
    if failure.status is None:
        return failure.transport in {"connect", "timeout", "dropped"}
    if failure.status in RETRYABLE_STATUSES:
        return True
    return failure.status == 409 and failure.error_code in BUSY_CODES


def backoff_delay(attempt: int, settings: RetrySettings, rng: random.Random) -> float:
    """Full-jitter delay before attempt `attempt + 1`, given that attempt `attempt` (1-based) failed."""
    ceiling = min(settings.max_delay, settings.base_delay * 2 ** min(attempt - 1, 62))
    return rng.uniform(0.0, ceiling)


def decide(attempt: int, failure: Failure, settings: RetrySettings, rng: random.Random) -> Decision:
    """Retry or give up after attempt number `attempt` (1-based) failed with `failure`."""
    if not is_retryable(failure):
        return Decision(False, 0.0, "not retryable")
    if attempt >= settings.attempts:
        return Decision(False, 0.0, f"gave up after {attempt} attempts")
    if failure.retry_after is not None:
        return Decision(True, min(max(failure.retry_after, 0.0), MAX_RETRY_AFTER), "retry-after")
    return Decision(True, backoff_delay(attempt, settings, rng), "backoff")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait per a Retry-After header (delta-seconds or HTTP date), or None if absent or unusable.

    A date in the past gives None, so the caller falls back to its own backoff rather than retrying at once.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    if text.count(".") == 1 and text.replace(".", "").isdigit():
        return float(text)  # not RFC 9110 delta-seconds, but simulators and some gateways send fractions
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - now).total_seconds()
    return seconds if seconds > 0 else None


@dataclass(slots=True)
class RetryBudget:
    """A retry quota shared by the whole run, in the spirit of the AWS SDKs' standard retry mode.

    Every retry costs tokens (a timeout more, as it held a connection longest); every success gives one back.
    When the quota is spent nothing is retried, so a failing service is not hammered by every worker at once
    while first attempts still go out (and refill it as soon as the service recovers).
    """

    capacity: int = 500
    retry_cost: int = 5
    timeout_cost: int = 10
    tokens: int = 500
    denied: int = 0

    def spend(self, failure: Failure) -> bool:
        if failure.throttled:
            return True  # a 429 already pauses the whole run (the governor): it needs no quota of its own
        cost = self.timeout_cost if failure.transport == "timeout" else self.retry_cost
        if self.tokens < cost:
            self.denied += 1
            return False
        self.tokens -= cost
        return True

    def refund(self) -> None:
        self.tokens = min(self.capacity, self.tokens + 1)

    def state(self) -> dict[str, int]:
        return {"tokens": self.tokens, "capacity": self.capacity, "denied": self.denied}
