"""The checks an unattended run passes before it starts: the preview gate, the change window, resume.

Each turns files and the plan into a decision or a one-line `OrchestratorError` with its exit code; the CLI
calls them in order before it opens a report, so a refused run leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .engine import group_by_instance
from .errors import GateRefused, UsageError, WindowClosed
from .gate import Key, Preview, check_gate, load_preview, observed
from .journal import parse_journal, read_reports
from .plan import Mode, Plan
from .window import WindowState, estimate_duration, fits, window_state


def approved_observations(
    plan: Plan, endpoint: str, approved: str | None, no_gate: bool, now: datetime
) -> tuple[Preview | None, Mapping[Key, Mode | None] | None]:
    """The approved preview and what it observed, or (None, None) with --no-gate; GateRefused otherwise."""
    if no_gate:
        return None, None
    if not approved:
        raise GateRefused(
            f"{plan.path}: apply needs --approved PREVIEW (the file `orchestrator preview` wrote and someone "
            "reviewed), or --no-gate to run without one"
        )
    preview = load_preview(approved)
    check_gate(preview, plan, endpoint, now)
    return preview, observed(preview)


def estimate_seconds(plan: Plan, preview: Preview | None) -> float:
    """How long the run takes at least (window.estimate_duration), from the preview's changes when there is one.

    Without a preview every target counts as one change (`all` as one proxy). Job length is unknown in advance
    (contract [UNK]); one poll interval per job is assumed.
    """
    if preview is not None:
        chains: dict[tuple[str, str], int] = {}
        for target in preview.targets:
            if target.action == "change":
                key = (target.project_id, target.instance_id)
                chains[key] = chains.get(key, 0) + 1
        lengths, listings = list(chains.values()), len({(t.project_id, t.instance_id) for t in preview.targets})
    else:
        groups = group_by_instance(plan.targets)
        lengths, listings = [len(targets) for targets in groups.values()], len(groups)
    return estimate_duration(
        lengths,
        plan.limits.rate,
        plan.limits.concurrency,
        plan.limits.per_instance,
        job_seconds=plan.jobs.poll_interval,
        listings=listings,
        poll_interval=plan.jobs.poll_interval,
    )


def check_window(plan: Plan, now: datetime, estimate: float, *, allow_partial: bool) -> None:
    """WindowClosed (exit 5) unless the window lets the run start now and (or --allow-partial) finish."""
    window = plan.window
    state = window_state(window, now)
    if window is None or state is WindowState.OPEN:
        if window is not None and not allow_partial and not fits(window, now, estimate):
            raise WindowClosed(
                f"{plan.path}: the run needs about {estimate:.0f}s but the window's last start is "
                f"{window.last_start.isoformat()}; it cannot finish in the window (use --allow-partial to run "
                "what fits and resume later)"
            )
        return
    if state is WindowState.NOT_OPEN:
        raise WindowClosed(f"{plan.path}: the change window opens at {window.not_before.isoformat()}; nothing started")
    raise WindowClosed(
        f"{plan.path}: the change window no longer lets a target start (last start "
        f"{window.last_start.isoformat()}, closes {window.not_after.isoformat()}); nothing started"
    )


@dataclass(frozen=True, slots=True)
class ResumeState:
    skip: frozenset[Key] = frozenset()
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # torn or garbled lines, for the log
    started_fields: Mapping[str, Any] = field(default_factory=dict)


def resume_state(plan: Plan, paths: Sequence[str], *, report_path: str | None = None) -> ResumeState:
    """Read the reports of earlier runs (and those they resumed, transitively) as one journal.

    The new report's `run_started.resumes` names them relative to its own directory (`report_path`), so that
    it can be read from any directory, and moved with them; absolute for a report on stdout; as read when the
    report's path is not known.
    """
    found = read_reports(paths, option="--resume")
    journal = parse_journal(found.files)
    digests = journal.plan_digests
    if digests and plan.digest not in digests:
        raise UsageError(
            f"--resume: {paths[0]} was written for another version of {plan.path} (plan digest differs); "
            "resume with the plan that made it, or start a new run"
        )
    notes = tuple(str(bad) for bad in journal.bad_lines)
    done = journal.done_keys
    files = tuple(name for name, _ in found.files)
    return ResumeState(
        skip=done,
        files=files,
        notes=notes,
        started_fields={
            "resumes": [stored_path(name, report_path) for name in files],
            "resumed_run_ids": list(journal.run_ids),
            "resume_done": len(done),
            "resume_bad_lines": list(notes),
        },
    )


def stored_path(path: str, report_path: str | None) -> str:
    """`path` as a report at `report_path` names it: relative to its directory; absolute on stdout ('-')."""
    if report_path is None:
        return path
    if report_path == "-":
        return os.path.abspath(path)
    return os.path.relpath(os.path.abspath(path), os.path.dirname(os.path.abspath(report_path)))
