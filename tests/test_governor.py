"""The governor: a strict rate ceiling from the first call, and a concurrency cap."""

import asyncio

import pytest

from orchestrator.governor import Governor, strict_limiter
from orchestrator.plan import Rate


def max_in_window(times: list[float], period: float) -> int:
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] >= period - 1e-6:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_no_burst_at_start_up() -> None:
    """40 calls at 10 per 0.25 s never start more than 10 in any 0.25 s window, the first window included."""
    governor = Governor(Rate(10, 0.25), concurrency=40)
    governor.proven.set()
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def one() -> None:
        async with governor.call():
            starts.append(loop.time())

    await asyncio.gather(*(one() for _ in range(40)))
    assert len(starts) == 40 and governor.admitted == 40
    assert max_in_window(starts, 0.25) <= 10


async def test_concurrency_cap_holds() -> None:
    """No more than `concurrency` calls are inside the governor at once (credentials already proven)."""
    governor = Governor(Rate(10_000, 1.0), concurrency=3)
    governor.proven.set()
    inside = peak = 0

    async def one() -> None:
        nonlocal inside, peak
        async with governor.call():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(20)))
    assert peak == 3


@pytest.mark.parametrize("rate", [Rate(0, 1.0), Rate(10, 0.0), Rate(10, -1.0), Rate(-1, 1.0)])
def test_nonsense_rates_are_refused(rate: Rate) -> None:
    """A zero or negative rate is refused instead of dividing by zero or running unlimited."""
    with pytest.raises(ValueError, match="rate must be positive"):
        strict_limiter(rate)


def test_zero_concurrency_is_refused() -> None:
    """A concurrency below 1 is refused."""
    with pytest.raises(ValueError, match="concurrency"):
        Governor(Rate(1, 1.0), 0)


async def test_calls_go_one_at_a_time_until_credentials_are_proven() -> None:
    """Before any answer proved the credentials only one call is inside; afterwards, up to `concurrency`."""
    governor = Governor(Rate(10_000, 1.0), concurrency=5)
    inside = peak = 0
    peaks: list[int] = []

    async def one(prove: bool) -> None:
        nonlocal inside, peak
        async with governor.call():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            if prove:
                governor.proven.set()
            inside -= 1

    await asyncio.gather(*(one(prove=False) for _ in range(4)))
    peaks.append(peak)
    peak = 0
    await asyncio.gather(one(prove=True), *(one(prove=False) for _ in range(9)))
    peaks.append(peak)
    assert peaks[0] == 1 and peaks[1] == 5


def test_slots_make_up_for_late_wake_ups() -> None:
    """A call woken late does not push later slots back: slots stay on the 1/R grid."""
    from orchestrator.governor import SlotLimiter

    limiter = SlotLimiter(Rate(10, 1.0))
    assert limiter.reserve(0.0) == 0.0
    assert limiter.reserve(0.0) == 0.1
    assert limiter.reserve(0.13) == 0.2  # ready late: still the next grid slot, no drift
    assert round(limiter.reserve(5.0), 6) == 5.0  # after idle: now, and no banked burst
    assert round(limiter.reserve(5.0), 6) == 5.1


def test_the_window_log_holds_the_ceiling_when_starts_bunch_up() -> None:
    """If late starts bunch up, the log of the last N starts still keeps N per period."""
    from orchestrator.governor import SlotLimiter

    limiter = SlotLimiter(Rate(3, 1.0))
    for moment in (0.0, 0.9, 0.95):
        assert limiter.earliest(moment) == moment
        limiter.admit(moment)
    # A 4th start waits until the 1st is a period (and a quarter interval, for network jitter) old.
    assert abs(limiter.earliest(0.96) - (1.0 + 1 / 12)) < 1e-9
    fast = SlotLimiter(Rate(200, 1.0))
    for _ in range(200):
        fast.admit(0.0)
    assert abs(fast.earliest(0.5) - 1.005) < 1e-9  # at least 5 ms to spare


def test_the_log_counts_a_start_from_when_its_request_left() -> None:
    """Once the API module marks a start sent, the window is measured from that moment: calls let through
    together after a stall but sent one by one do not make room for an early next start."""
    from orchestrator.governor import SlotLimiter

    limiter = SlotLimiter(Rate(3, 1.0))
    first = limiter.admit(0.0)
    limiter.admit(0.5)
    limiter.admit(0.6)
    margin = 1 / 12  # a quarter interval: more than 5 ms at 3/s
    assert abs(limiter.earliest(0.7) - (1.0 + margin)) < 1e-9  # not sent yet: its admission counts
    first.mark_sent(0.3)
    assert abs(limiter.earliest(0.7) - (1.3 + margin)) < 1e-9  # it reached the server at 0.3
    first.mark_sent(0.45)  # a re-send does not move it again
    assert abs(limiter.earliest(0.7) - (1.3 + margin)) < 1e-9


def test_the_earliest_moment_in_the_log_decides_whichever_start_it_is() -> None:
    """If the oldest admission left last, a later admission's earlier send decides the window."""
    from orchestrator.governor import SlotLimiter

    limiter = SlotLimiter(Rate(3, 1.0))
    starts = [limiter.admit(moment) for moment in (0.0, 0.1, 0.2)]
    starts[0].mark_sent(0.9)
    starts[1].mark_sent(0.15)
    starts[2].mark_sent(0.25)
    assert abs(limiter.earliest(0.3) - (1.15 + 1 / 12)) < 1e-9


async def test_a_call_gets_its_start_to_mark() -> None:
    """Governor.call hands the body the log entry of its admission, which the API's trace marks as sent."""
    governor = Governor(Rate(100, 1.0), 4)
    governor.proven.set()
    async with governor.call() as start:
        assert start.sent is None and start.moment == start.admitted
        start.mark_sent(start.admitted + 0.01)
    assert start.moment == start.admitted + 0.01
