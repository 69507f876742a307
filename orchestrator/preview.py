"""Comparing the plan with the fleet's observed state. Pure: listings in, steps out.

A listing (contract §2) is parsed into `ObservedProxy` values; `resolve` turns the plan's targets for one
instance into concrete `Step`s: `proxy_id: all` becomes one step per listed proxy, and each step says
whether the proxy must change, is already at its goal, or is missing from the listing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .plan import ALL_PROXIES, MODES, Mode, Target


class Action(enum.StrEnum):
    CHANGE = "change"
    UNCHANGED = "unchanged"
    MISSING = "missing"  # the proxy is not in the instance's listing


@dataclass(frozen=True, slots=True)
class ObservedProxy:
    proxy_id: str
    mode: Mode | None  # None: the listing gave no (known) consistence_mode
    status: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    project_id: str
    instance_id: str
    proxy_id: str
    mode_before: Mode | None
    mode_target: Mode
    action: Action
    line: int = 0  # the plan line of the target that produced this step

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.project_id, self.instance_id, self.proxy_id)


class ListingError(ValueError):
    """The listing body does not have the documented shape."""


def parse_proxy_page(body: Any) -> list[ObservedProxy]:
    """Proxies of one page of `GET .../proxies`: `{"proxy_list": [{"proxy": {"pool_id", "consistence_mode", …}}]}`."""
    if not isinstance(body, dict) or not isinstance(body.get("proxy_list"), list):
        raise ListingError("listing has no 'proxy_list' array")
    proxies = []
    for index, element in enumerate(body["proxy_list"]):
        proxy = element.get("proxy") if isinstance(element, dict) else None
        pool_id = proxy.get("pool_id") if isinstance(proxy, dict) else None
        if not isinstance(pool_id, str) or not pool_id:
            raise ListingError(f"proxy_list[{index}] has no proxy.pool_id")
        assert isinstance(proxy, dict)
        mode = proxy.get("consistence_mode")
        status, name = proxy.get("status"), proxy.get("name")
        proxies.append(
            ObservedProxy(
                proxy_id=pool_id,
                mode=mode if mode in MODES else None,
                status=status if isinstance(status, str) else None,
                name=name if isinstance(name, str) else None,
            )
        )
    return proxies


def resolve(targets: Sequence[Target], observed: Sequence[ObservedProxy]) -> list[Step]:
    """Concrete steps for the targets of one instance, in plan order (`all` expands in listing order)."""
    by_id: Mapping[str, ObservedProxy] = {p.proxy_id: p for p in observed}
    steps: list[Step] = []
    for target in targets:
        if target.proxy_id == ALL_PROXIES:
            steps.extend(_step(target, p.proxy_id, p) for p in observed)
        else:
            steps.append(_step(target, target.proxy_id, by_id.get(target.proxy_id)))
    return steps


def _step(target: Target, proxy_id: str, seen: ObservedProxy | None) -> Step:
    if seen is None:
        action, before = Action.MISSING, None
    else:
        before = seen.mode
        action = Action.UNCHANGED if before == target.mode else Action.CHANGE
    return Step(target.project_id, target.instance_id, proxy_id, before, target.mode, action, target.line)


def summarize(steps: Iterable[Step]) -> dict[str, int]:
    counts = {a.value: 0 for a in Action}
    for step in steps:
        counts[step.action.value] += 1
    return counts


def render_table(steps: Sequence[Step], *, show_unchanged: bool = False) -> list[str]:
    """A readable, Terraform-like listing of what would change; one line per step shown."""
    shown = [s for s in steps if show_unchanged or s.action is not Action.UNCHANGED]
    if not shown:
        return []
    width = max(len(f"{s.instance_id}/{s.proxy_id}") for s in shown)
    lines = []
    for s in shown:
        where = f"{s.instance_id}/{s.proxy_id}".ljust(width)
        before = s.mode_before or "?"
        if s.action is Action.CHANGE:
            lines.append(f"  ~ {where}  {before:>8} -> {s.mode_target}")
        elif s.action is Action.UNCHANGED:
            lines.append(f"    {where}  {before:>8} (already {s.mode_target})")
        else:
            lines.append(f"  ! {where}  not found in the instance's proxy listing")
    return lines
