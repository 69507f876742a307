"""Account-level throttling like the API gateway's (contract §8: 429 APIGW.0308, "by default, an API can be
accessed a maximum of 200 times per second", often less for a tenant). Pure: a token bucket on the injected
clock.

[INF] The real gateway's bucket shape and whether it counts per account, per user or per API are not
published; here one bucket per project (the simulator's notion of an account) counts every service call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class AccountBuckets:
    rate: float  # calls per second allowed per account
    burst: float  # bucket size (calls that may arrive at once after idle)
    _level: dict[str, float] = field(default_factory=dict)
    _last: dict[str, float] = field(default_factory=dict)

    def take(self, account: str, now: float) -> float | None:
        """None if the call may pass (a token is taken); else the seconds until the next token."""
        level = self._level.get(account, self.burst)
        last = self._last.get(account, now)
        level = min(self.burst, level + (now - last) * self.rate)
        self._last[account] = now
        if level >= 1.0:
            self._level[account] = level - 1.0
            return None
        self._level[account] = level
        return (1.0 - level) / self.rate


def retry_after_header(wait: float) -> float:
    """Whole seconds, as RFC 9110 delta-seconds, never 0 for a real wait."""
    return float(max(1, math.ceil(wait)))
