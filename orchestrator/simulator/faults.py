"""Seeded fault decisions: which requests the simulator drops, stalls, throttles or fails.

Every request draws the same number of random values in the same order, whatever the probabilities, so a
given seed and a given sequence of requests always get the same faults. Job failures use a second stream, so
turning them on does not shift the request faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .config import Faults


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """The faults chosen for one request, in the order the server applies them."""

    drop_before: bool = False
    stall: bool = False
    throttle_429: bool = False
    error_500: bool = False
    drop_after: bool = False

    @property
    def name(self) -> str | None:
        """The first fault that takes effect (later ones are moot once a request is dropped or refused)."""
        for name in ("drop_before", "stall", "throttle_429", "error_500", "drop_after"):
            if getattr(self, name):
                return name
        return None


NO_FAULT = FaultDecision()


class FaultDecider:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._requests = random.Random(faults.seed)
        self._jobs = random.Random(f"jobs:{faults.seed}")

    def decide(self, method: str) -> FaultDecision:
        f = self.faults
        draws = [self._requests.random() for _ in range(5)]
        return FaultDecision(
            drop_before=draws[0] < f.drop_before,
            stall=draws[1] < f.stall,
            throttle_429=draws[2] < f.throttle_429,
            error_500=draws[3] < f.error_500,
            drop_after=method == "PUT" and draws[4] < f.drop_after,
        )

    def job_fails(self, rate: float) -> bool:
        return self._jobs.random() < rate
