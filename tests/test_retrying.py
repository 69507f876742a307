"""The retry policy as pure logic: what is retried, how long it waits, and Retry-After parsing."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.plan import RetrySettings
from orchestrator.retrying import MAX_RETRY_AFTER, Failure, backoff_delay, decide, is_retryable, parse_retry_after

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
SETTINGS = RetrySettings(attempts=5, base_delay=0.5, max_delay=4.0, timeout=10.0)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_server_errors_and_throttling_are_retried(status: int) -> None:
    """5xx gateway/server errors and 429 throttling are worth another attempt."""
    assert is_retryable(Failure(status=status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 501])
def test_other_statuses_are_final(status: int) -> None:
    """Client errors (and 501) are never retried: another attempt cannot help and may lock a key."""
    assert not is_retryable(Failure(status=status, error_code="DBS.200001"))


@pytest.mark.parametrize("code", ["DBS.200019", "DBS.201014", "DBS.201015", "DBS.200047", "DBS.05000084", "DBS.212033"])
def test_instance_busy_409s_are_retried(code: str) -> None:
    """A 409 carrying one of the contract's "instance busy" codes is retried."""
    assert is_retryable(Failure(status=409, error_code=code))


def test_other_409s_are_final() -> None:
    """A 409 with any other code is a conflict we cannot wait out."""
    assert not is_retryable(Failure(status=409, error_code="DBS.999999"))
    assert not is_retryable(Failure(status=409))


@pytest.mark.parametrize(
    ("kind", "expected"), [("connect", True), ("timeout", True), ("dropped", True), ("protocol", False)]
)
def test_transport_failures(kind: str, expected: bool) -> None:
    """Connect errors, timeouts and dropped connections are retried; unreadable answers are not."""
    assert is_retryable(Failure(transport=kind)) is expected


def test_backoff_is_full_jitter_under_a_capped_exponential() -> None:
    """Each delay is uniform in [0, min(max_delay, base * 2^(n-1))]: the same seed gives the same schedule."""
    rng = random.Random(7)
    delays = [backoff_delay(n, SETTINGS, rng) for n in range(1, 8)]
    expected_rng = random.Random(7)
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert delays == [expected_rng.uniform(0, c) for c in ceilings]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))


def test_backoff_does_not_overflow_on_huge_attempt_numbers() -> None:
    """A very late attempt still gets a delay capped at max_delay."""
    assert 0 <= backoff_delay(10_000, SETTINGS, random.Random(1)) <= SETTINGS.max_delay


def test_decide_gives_up_after_the_last_attempt() -> None:
    """The policy stops when the attempt budget is spent, even for a retryable failure."""
    rng = random.Random(0)
    assert decide(4, Failure(status=500), SETTINGS, rng).retry
    final = decide(5, Failure(status=500), SETTINGS, rng)
    assert not final.retry and "5 attempts" in final.reason


def test_decide_never_retries_a_400() -> None:
    """A 400 is final on the first attempt."""
    assert not decide(1, Failure(status=400, error_code="DBS.200001"), SETTINGS, random.Random(0)).retry


def test_decide_honours_retry_after_exactly() -> None:
    """A Retry-After value replaces the backoff delay (jitter does not shorten it)."""
    decision = decide(1, Failure(status=429, retry_after=3.0), SETTINGS, random.Random(0))
    assert decision.retry and decision.delay == 3.0 and decision.reason == "retry-after"


def test_decide_caps_absurd_retry_after() -> None:
    """A Retry-After of a day is capped, so a broken gateway cannot park the run past its window."""
    decision = decide(1, Failure(status=429, retry_after=86_400.0), SETTINGS, random.Random(0))
    assert decision.delay == MAX_RETRY_AFTER


def test_retry_after_seconds() -> None:
    """Retry-After in delta-seconds is read as a number of seconds."""
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after(" 0 ", NOW) == 0.0


def test_retry_after_http_date() -> None:
    """Retry-After as an HTTP date is the time left until that date."""
    assert parse_retry_after("Thu, 03 Dec 2026 12:00:30 GMT", NOW) == 30.0


def test_retry_after_in_the_past_or_garbage_falls_back_to_backoff() -> None:
    """A past date, a negative number or garbage gives None, so the caller uses its own backoff."""
    past = (NOW - timedelta(seconds=5)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    for value in (past, "-3", "soon", "", None, "1.5e3"):
        assert parse_retry_after(value, NOW) is None
