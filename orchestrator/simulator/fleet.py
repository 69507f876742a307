"""Seeding a simulated fleet from a plan, deterministically.

Every proxy the plan names exists; an instance targeted with `proxy_id: all` gets 1-4 proxies derived from
its id and the seed. Initial modes come from a hash of (proxy id, seed), about a third each of session,
global and eventual, so some targets are already at their goal (no-ops) and others are not.
"""

from __future__ import annotations

import hashlib
import time

from orchestrator.plan import ALL_PROXIES, MODES, Plan

from .state import Clock, Fleet


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


def initial_mode(proxy_id: str, seed: int = 0) -> str:
    """The seeded starting mode of a proxy."""
    return MODES[int(_digest("mode", proxy_id, seed), 16) % len(MODES)]


def generated_proxy_ids(instance_id: str, seed: int = 0) -> list[str]:
    """The 1-4 proxy ids of an instance targeted with `proxy_id: all`.

    Ids look like the contract's: 32 hex digits + "po01" (doc: 36 chars) or, every other one, 31 hex digits +
    "po01" like the doc's own example `7bf4a8bbb4f4fb58233a242ee13603bpo01` (35 chars) [§1].
    """
    count = 1 + int(_digest("count", instance_id, seed), 16) % 4
    ids = []
    for index in range(count):
        width = 32 if index % 2 == 0 else 31
        ids.append(_digest("proxy", instance_id, seed, index)[:width] + "po01")
    return ids


def fleet_from_plan(plan: Plan, *, seed: int = 0, clock: Clock = time.monotonic) -> Fleet:
    """A fleet holding every proxy `plan` targets, with seeded ids (for `all`) and seeded starting modes."""
    fleet = Fleet(clock=clock)
    for target in plan.targets:
        if target.proxy_id == ALL_PROXIES:
            proxy_ids = generated_proxy_ids(target.instance_id, seed)
        else:
            proxy_ids = [target.proxy_id]
        for proxy_id in proxy_ids:
            fleet.add_proxy(target.project_id, target.instance_id, proxy_id, initial_mode(proxy_id, seed))
    return fleet
