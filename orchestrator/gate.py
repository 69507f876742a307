"""The preview gate: the preview file a reviewer approves, and the checks `apply --approved` makes. Pure,
except `load_preview`, which only reads a file and hands its JSON to `parse_preview`.

A preview records the plan's digest, when it was made and until when it may be used (plan `gate.max_age`),
the endpoint it read, and for every resolved target the mode it observed and the mode intended. `apply`
refuses (GateRefused, exit 4) a preview for another plan digest, an expired one, or one for another endpoint.
Then, per target, `drift` compares the live listing with what the preview observed: a target whose mode moved
since the review is skipped as `drifted`, so only what was reviewed is changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from .errors import GateRefused
from .plan import MODES, Mode, Plan
from .preview import Action, Step, summarize
from .report import TargetOutcome
from .window import fits

PREVIEW_KIND: Final = "orchestrator-preview"
PREVIEW_VERSION: Final = 1
Key = tuple[str, str, str]  # (project_id, instance_id, proxy_id)


@dataclass(frozen=True, slots=True)
class PreviewTarget:
    project_id: str
    instance_id: str
    proxy_id: str
    mode_before: Mode | None  # None: the proxy was missing, or its mode unknown
    mode_target: Mode
    action: str  # "change" | "unchanged" | "missing"

    @property
    def key(self) -> Key:
        return (self.project_id, self.instance_id, self.proxy_id)


@dataclass(frozen=True, slots=True)
class Preview:
    path: str  # where it was read from, for messages
    plan: str
    plan_digest: str
    created_at: datetime  # aware
    expires_at: datetime  # aware
    endpoint: str
    targets: tuple[PreviewTarget, ...]
    estimated_duration_s: float | None = None


# --- writing ------------------------------------------------------------------------------------------------
def preview_document(
    plan: Plan,
    endpoint: str,
    steps: Sequence[Step],
    unreadable: Sequence[TargetOutcome],
    now: datetime,
    estimate: float | None,
) -> dict[str, Any]:
    """The preview file's content (JSON-ready), made at `now` (aware) for `endpoint`.

    `steps` are the resolved targets (change, unchanged, missing); `unreadable` the outcomes of targets that
    have no step because their instance could not be listed. Outcomes whose key has a step (a missing proxy)
    are left out of `unreadable`, so all failing outcomes of a dry run may be passed. `estimate` is the run's
    estimated duration in seconds (`window.estimate_duration`), or None.
    """
    made = _utc(now)
    stepped = {s.key for s in steps}
    unread = [o for o in unreadable if (o.project_id, o.instance_id, o.proxy_id) not in stepped]
    document: dict[str, Any] = {
        "kind": PREVIEW_KIND,
        "version": PREVIEW_VERSION,
        "plan": plan.path,
        "plan_name": plan.name,
        "plan_digest": plan.digest,
        "created_at": _iso(made),
        "expires_at": _iso(made + timedelta(seconds=plan.gate.max_age)),
        "endpoint": endpoint,
        "counts": {**summarize(steps), "unreadable": len(unread)},
        "targets": [
            {
                "project_id": s.project_id,
                "instance_id": s.instance_id,
                "proxy_id": s.proxy_id,
                "mode_before": s.mode_before,
                "mode_target": s.mode_target,
                "action": s.action.value,
            }
            for s in steps
        ],
        "unreadable": [
            {
                "project_id": o.project_id,
                "instance_id": o.instance_id,
                "proxy_id": o.proxy_id,
                "mode_target": o.mode_target,
                "error_code": o.error_code,
                "error_msg": o.error_msg,
            }
            for o in unread
        ],
        "estimated_duration_s": None if estimate is None else round(estimate, 1),
        "window": None,
    }
    window = plan.window
    if window is not None:
        document["window"] = {
            "not_before": _iso(window.not_before),
            "not_after": _iso(window.not_after),
            "cutoff_s": window.cutoff,
            "last_start": _iso(window.last_start),
            # Would the run, started now or at the opening, finish before the cutoff? None: no estimate.
            "fits": None if estimate is None else fits(window, made, estimate),
        }
    return document


# --- reading ------------------------------------------------------------------------------------------------
def load_preview(path: str | os.PathLike[str]) -> Preview:
    """Read and parse the preview file at `path`; GateRefused (one line) if it cannot be read or is not one."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise GateRefused(f"cannot read the preview {name}: {exc.strerror or exc}") from None
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise GateRefused(f"{name} is not a preview file: not UTF-8 text; run preview again") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise GateRefused(f"{name} is not a preview file: invalid JSON at {where}; run preview again") from None
    return parse_preview(document, name)


def parse_preview(document: object, path: str) -> Preview:
    """Check a preview file's parsed JSON and turn it into a Preview; GateRefused naming the first problem."""

    def refuse(problem: str) -> GateRefused:
        return GateRefused(f"{path} is not a usable preview file: {problem}; run preview again")

    if not isinstance(document, dict):
        raise refuse("expected a JSON object")
    if document.get("kind") != PREVIEW_KIND:
        raise refuse(f"kind is {document.get('kind')!r}, expected {PREVIEW_KIND!r}")
    if document.get("version") != PREVIEW_VERSION:
        raise refuse(f"version {document.get('version')!r} is not supported (this orchestrator reads 1)")
    fields: dict[str, str] = {}
    for key in ("plan", "plan_digest", "created_at", "expires_at", "endpoint"):
        value = document.get(key)
        if not isinstance(value, str) or not value:
            raise refuse(f"{key} is missing or not text")
        fields[key] = value
    created, expires = _read_time(fields["created_at"]), _read_time(fields["expires_at"])
    if created is None or expires is None:
        raise refuse("created_at and expires_at must be ISO 8601 times with an offset")
    raw_targets = document.get("targets")
    if not isinstance(raw_targets, list):
        raise refuse("targets is missing or not a list")
    targets = []
    for index, item in enumerate(raw_targets):
        target = _read_target(item)
        if target is None:
            raise refuse(f"targets[{index}] is not a target (project_id, instance_id, proxy_id, modes, action)")
        targets.append(target)
    estimate = document.get("estimated_duration_s")
    return Preview(
        path=path,
        plan=fields["plan"],
        plan_digest=fields["plan_digest"],
        created_at=created,
        expires_at=expires,
        endpoint=fields["endpoint"],
        targets=tuple(targets),
        estimated_duration_s=float(estimate) if isinstance(estimate, int | float) and estimate >= 0 else None,
    )


def _read_target(item: object) -> PreviewTarget | None:
    if not isinstance(item, dict):
        return None
    ids = [item.get(k) for k in ("project_id", "instance_id", "proxy_id")]
    before, goal, action = item.get("mode_before"), item.get("mode_target"), item.get("action")
    if not all(isinstance(i, str) and i for i in ids) or not isinstance(action, str):
        return None
    if (before is not None and before not in MODES) or goal not in MODES:
        return None
    project_id, instance_id, proxy_id = (str(i) for i in ids)
    return PreviewTarget(project_id, instance_id, proxy_id, before, goal, action)


def _read_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


# --- checking -----------------------------------------------------------------------------------------------
# How far ahead of this machine's clock a preview may say it was made: previews and applies may run on two
# machines whose clocks differ by a little (NTP keeps them within seconds); more is an edited file or a bad clock.
FUTURE_SKEW: Final = timedelta(minutes=5)


def check_gate(preview: Preview, plan: Plan, endpoint: str, now: datetime) -> None:
    """Refuse (GateRefused, one line naming the failed check) a preview that does not approve this run.

    In order: the plan's digest must be the one previewed (any edit of the plan file needs a new review);
    the preview must not come from the future (more than FUTURE_SKEW ahead of `now`) nor have expired at
    `now` (its expires_at, and never later than created_at plus the plan's gate.max_age); it must have been
    made for the same endpoint (a trailing slash aside).
    """
    if preview.plan_digest != plan.digest:
        raise GateRefused(
            f"the plan changed since the preview was made: {plan.path} has digest {plan.digest[:12]}…, "
            f"the preview {preview.path} approves {preview.plan_digest[:12]}…; run preview again and review it"
        )
    if preview.created_at > now + FUTURE_SKEW:  # an edited file, or a clock far off: the age means nothing
        raise GateRefused(
            f"the preview {preview.path} says it was made at {_iso(preview.created_at)}, after now "
            f"({_iso(now)}): check this machine's clock, and run preview again"
        )
    expires = min(preview.expires_at, preview.created_at + timedelta(seconds=plan.gate.max_age))
    if now >= expires:
        raise GateRefused(
            f"the preview {preview.path} expired at {_iso(expires)} (made at {_iso(preview.created_at)}, "
            f"gate.max_age {plan.gate.max_age:g}s); run preview again"
        )
    if preview.endpoint.rstrip("/") != endpoint.rstrip("/"):
        raise GateRefused(
            f"the preview {preview.path} was made for the endpoint {preview.endpoint}, this run targets "
            f"{endpoint}; run preview against {endpoint}"
        )


def observed(preview: Preview) -> Mapping[Key, Mode | None]:
    """Each previewed target's mode as the reviewer saw it (None: missing or unknown), for `drift`."""
    return {t.key: t.mode_before for t in preview.targets}


def drift(approved: Mapping[Key, Mode | None], step: Step) -> str | None:
    """None if `step` (resolved from the live listing) may go ahead as approved; else the note of a `drifted`
    target, naming both values.

    A step already at its goal is never drifted (it is `unchanged`); a missing proxy is left to the engine
    (`failed`, proxy_not_found). A step whose proxy the preview did not list (a proxy that appeared under
    `proxy_id: all` since) was not approved, so it counts as drifted too.
    """
    if step.action is not Action.CHANGE:
        return None
    if step.key not in approved:
        return "not in the approved preview (the proxy appeared since it was made); run preview again"
    before = approved[step.key]
    if before != step.mode_before:
        return (
            f"mode was {before or 'unknown'} in the approved preview, is {step.mode_before or 'unknown'} now; "
            "run preview again"
        )
    return None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
