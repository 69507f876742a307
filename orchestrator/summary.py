"""What one or more reports say happened, in numbers and rows (rendered by `summarytext`, `htmlreport`). Pure.

A summary is made from a `Journal` (orchestrator.journal): several reports of resumed runs read together,
the latest outcome per target winning. Lines of dry runs are left out, unless the reports hold nothing but
dry runs (`journal_for_summary`): then the summary is one of previews (`would_change`).
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from .errors import UsageError
from .journal import DONE_OUTCOMES, Journal, JournalEntry, JournalRun, Key, parse_journal
from .plan import ALL_PROXIES

# Every outcome a report of this or an earlier/later version may hold, in the order a summary lists them.
KNOWN_OUTCOMES: Final = (
    "submitted", "completed", "verified", "unchanged", "would_change",
    "failed", "job_failed", "job_timeout", "unknown", "drifted", "not_started",
)  # fmt: skip
# Nothing to look at: done, or a preview's plan. Everything else but not_started is a failure to look at.
QUIET_OUTCOMES: Final = DONE_OUTCOMES | {"would_change"}
CSV_FIELDS: Final = (
    "project_id", "instance_id", "proxy_id", "mode_before", "mode_target", "outcome", "job_id", "error_code",
    "error_msg",
)  # fmt: skip
REQUEST_KINDS: Final = ("calls", "wire", "retries", "throttled", "job_polls")


@dataclass(frozen=True, slots=True)
class Filters:
    """Which targets a summary shows: any of `outcomes` (all if empty) and any of `instances` (all if empty)."""

    outcomes: frozenset[str] = frozenset()
    instances: frozenset[str] = frozenset()

    @property
    def active(self) -> bool:
        return bool(self.outcomes or self.instances)

    def matches(self, row: TargetRow) -> bool:
        return self.allows(row.instance_id, row.outcome)

    def allows(self, instance_id: str, outcome: str) -> bool:
        return (not self.outcomes or outcome in self.outcomes) and (not self.instances or instance_id in self.instances)

    def describe(self) -> str:
        parts = [f"outcome {' or '.join(sorted(self.outcomes))}"] if self.outcomes else []
        parts += [f"instance {' or '.join(sorted(self.instances))}"] if self.instances else []
        return ", ".join(parts)


def make_filters(outcomes: Iterable[str] = (), instances: Iterable[str] = ()) -> Filters:
    """Filters from command-line values (comma-separated lists allowed); UsageError for an unknown outcome."""
    wanted = {part.strip().lower() for value in outcomes for part in value.split(",") if part.strip()}
    for outcome in sorted(wanted - set(KNOWN_OUTCOMES)):
        close = difflib.get_close_matches(outcome, KNOWN_OUTCOMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"--outcome: unknown outcome {outcome!r}{hint}; allowed: {', '.join(KNOWN_OUTCOMES)}")
    ids = {part.strip() for value in instances for part in value.split(",") if part.strip()}
    return Filters(frozenset(wanted), frozenset(ids))


@dataclass(frozen=True, slots=True)
class Settled:
    """One target line: when a run settled a target, and how."""

    at: datetime
    outcome: str
    run_id: str


@dataclass(frozen=True, slots=True)
class TargetRow:
    """One target's latest outcome, with where it was recorded."""

    project_id: str
    instance_id: str
    proxy_id: str
    mode_before: str | None
    mode_target: str | None
    outcome: str
    job_id: str | None
    error_code: str | None
    error_msg: str | None
    http_status: int | None
    note: str | None
    ts: datetime | None
    run_id: str
    file: str
    line: int
    settled: tuple[Settled, ...] = field(default=(), repr=False)  # each of its lines, oldest first

    @property
    def failing(self) -> bool:
        return self.outcome not in QUIET_OUTCOMES and self.outcome != "not_started"

    def as_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id, "instance_id": self.instance_id, "proxy_id": self.proxy_id,
            "mode_before": self.mode_before, "mode_target": self.mode_target, "outcome": self.outcome,
            "job_id": self.job_id, "error_code": self.error_code, "error_msg": self.error_msg,
            "http_status": self.http_status, "note": self.note, "ts": _iso(self.ts), "run_id": self.run_id,
            "file": self.file, "line": self.line,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run named in the reports."""

    run_id: str
    file: str
    command: str | None
    dry_run: bool
    started: datetime | None
    finished: bool  # False: killed before its run_finished line
    exit_code: int | None
    duration_s: float | None  # run_finished's; for an unfinished run, first to last line
    stop_reason: str | None
    requests: Mapping[str, int]  # calls, wire, retries, throttled, job_polls (empty if unfinished)
    rate_limit: str | None  # the plan's limits.rate, as run_started recorded it

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "file": self.file, "command": self.command, "dry_run": self.dry_run,
            "started": _iso(self.started), "finished": self.finished, "exit_code": self.exit_code,
            "duration_s": self.duration_s, "stop_reason": self.stop_reason, "requests": dict(self.requests),
            "rate_limit": self.rate_limit,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """The failing targets that share an error code (None: the outcome has none, e.g. drifted)."""

    error_code: str | None
    count: int
    outcomes: Mapping[str, int]
    example: str | None  # the first target's error_msg, else its note

    def as_dict(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "count": self.count, "outcomes": dict(self.outcomes),
                "example": self.example}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Summary:
    files: tuple[str, ...]
    runs: tuple[RunInfo, ...]
    dry_run: bool  # the reports hold only dry runs: the rows are a preview
    filters: Filters
    total: int  # targets in the reports, before the filters
    rows: tuple[TargetRow, ...]  # the targets the filters let through, by project, instance, proxy
    counts: Mapping[str, int]  # per outcome, of `rows`
    failures: tuple[FailureGroup, ...]  # of `rows`, largest group first
    duration_s: float  # of all runs together
    requests: Mapping[str, int]  # of all finished runs together
    effective_rate: float | None  # calls per second over the finished runs
    bad_lines: tuple[str, ...]  # lines of the reports that could not be read
    # What the reports lack to vouch for every target, whatever the filters (each needs a look): runs without
    # run_finished, targets without a line, resumed reports left out.
    gaps: tuple[str, ...] = ()

    @property
    def rate_limit(self) -> str | None:
        return next((run.rate_limit for run in reversed(self.runs) if run.rate_limit), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "runs": [run.as_dict() for run in self.runs],
            "dry_run": self.dry_run,
            "filters": {"outcome": sorted(self.filters.outcomes), "instance": sorted(self.filters.instances)},
            "total": self.total,
            "matched": len(self.rows),
            "counts": dict(self.counts),
            "failures": [group.as_dict() for group in self.failures],
            "duration_s": round(self.duration_s, 3),
            "requests": dict(self.requests),
            "effective_rate": None if self.effective_rate is None else round(self.effective_rate, 3),
            "rate_limit": self.rate_limit,
            "bad_lines": list(self.bad_lines),
            "gaps": list(self.gaps),
            "targets": [row.as_dict() for row in self.rows],
        }


# --- building a summary ---------------------------------------------------------------------------------------
def journal_for_summary(files: Sequence[tuple[str, bytes]], *, left_out: Sequence[str] = ()) -> Journal:
    """The journal of `files` without dry runs' lines, unless the files hold only dry runs; `left_out`: why
    resumed reports were not read (journal.ReportFiles)."""
    journal = parse_journal(files, left_out=left_out)
    if journal.runs and all(run.dry_run for run in journal.runs):
        return parse_journal(files, dry_runs=True, left_out=left_out)
    return journal


def current_entries(journal: Journal) -> list[JournalEntry]:
    """The journal's latest entries, by key, less the whole-instance lines a later run superseded.

    A line of a whole instance (proxy_id `all`: its listing failed, or it was not started) followed, in a
    later line, by lines of its proxies (a resumed run listed it) says nothing current any more.
    """
    position = {name: i for i, name in enumerate(journal.files)}

    def written(entry: JournalEntry) -> tuple[int, int]:
        return (position.get(entry.file, -1), entry.line)

    last_named: dict[tuple[str, str], tuple[int, int]] = {}
    for key, entry in journal.latest.items():
        if key[2] != ALL_PROXIES:
            last_named[key[:2]] = max(written(entry), last_named.get(key[:2], (-1, -1)))
    return [
        entry
        for key, entry in sorted(journal.latest.items())
        if key[2] != ALL_PROXIES or last_named.get(key[:2], (-1, -1)) < written(entry)
    ]


def summarize(journal: Journal, filters: Filters = Filters()) -> Summary:
    """The summary of a journal, its targets limited by `filters`."""
    every = sorted((_row(entry) for entry in current_entries(journal)), key=row_order)
    rows = tuple(row for row in every if filters.matches(row))
    last_line: dict[str, datetime] = {}  # run_id -> its last target line, for runs killed before run_finished
    for settled in (s for row in every for s in row.settled):
        last_line[settled.run_id] = max(settled.at, last_line.get(settled.run_id, settled.at))
    runs = tuple(_run_info(run, last_line.get(run.run_id)) for run in journal.runs)
    counts = Counter(row.outcome for row in rows)
    finished = [run for run in runs if run.requests and run.duration_s]
    requests = {kind: sum(run.requests.get(kind, 0) for run in finished) for kind in REQUEST_KINDS}
    finished_s = sum(run.duration_s or 0.0 for run in finished)
    dry_run = bool(runs) and all(run.dry_run for run in runs)
    return Summary(
        files=journal.files,
        runs=runs,
        dry_run=dry_run,
        filters=filters,
        total=len(every),
        rows=rows,
        counts={o: counts[o] for o in outcome_order(counts)},
        failures=_failure_groups(row for row in rows if row.failing),
        duration_s=sum(run.duration_s or 0.0 for run in runs),
        requests=requests if finished else {},
        effective_rate=sent(requests) / finished_s if finished_s > 0 else None,
        bad_lines=tuple(str(bad) for bad in journal.bad_lines),
        gaps=gaps(journal, dry_run=dry_run),
    )


def gaps(journal: Journal, *, dry_run: bool = False) -> tuple[str, ...]:
    """What the reports lack to vouch for every target: each is a reason for NEEDS A LOOK.

    * a run without run_finished: killed, or still running (its last targets may have no line);
    * targets without a line: fewer targets with a line than `run_started.targets` of an apply or preview,
      counted per plan version (a run and the runs that resumed it together; a finished run's `skipped`, the
      targets an earlier run settled, count too, so a resumed run read alone is whole). A `proxy_id: all`
      target counts once but may have a line per proxy: the count of targets without a line is a lower bound;
    * resumed reports left out (`--lost`).

    Only the runs the summary is of count: the real runs, or the dry runs of a summary of previews.
    """
    counted = [run for run in journal.runs if run.dry_run == dry_run]
    found = [
        f"run {run.run_id[:8]} has no run_finished line (killed, or still running)"
        for run in counted
        if not run.finished
    ]
    lined: dict[str, set[Key]] = {}  # run_id -> the targets it wrote a line for
    for key, entry in journal.latest.items():
        for line in entry.history:
            lined.setdefault(str(line.get("run_id")), set()).add(key)
    versions: dict[str, list[JournalRun]] = {}
    for run in counted:
        versions.setdefault(run.plan_digest or run.run_id, []).append(run)
    for runs in versions.values():
        expected = max((n for run in runs if (n := _planned(run)) is not None), default=0)
        have = len(set().union(*(lined.get(run.run_id, set()) for run in runs)))
        for run in runs:
            skipped = _int((run.ended or {}).get("skipped")) or 0
            have = max(have, len(lined.get(run.run_id, ())) + skipped)
        if have < expected:
            plan = next((run.plan for run in runs if run.plan), None)
            of = f" of {plan}" if plan and len(versions) > 1 else ""
            found.append(f"{expected - have} of {expected} targets{of} have no line")
    return (*found, *journal.left_out)


def _planned(run: JournalRun) -> int | None:
    """How many targets the run was to write a line for (or skip): an apply's or preview's, not a jobs run's."""
    started = run.started or {}
    return _int(started.get("targets")) if started.get("command") in ("apply", "preview") else None


def _row(entry: JournalEntry) -> TargetRow:
    record = entry.record
    project_id, instance_id, proxy_id = entry.key
    return TargetRow(
        project_id=project_id,
        instance_id=instance_id,
        proxy_id=proxy_id,
        mode_before=entry.mode_before,
        mode_target=entry.mode_target,
        outcome=entry.outcome,
        job_id=entry.job_id,
        error_code=_text(record.get("error_code")),
        error_msg=_text(record.get("error_msg")),
        http_status=_int(record.get("http_status")),
        note=_text(record.get("note")),
        ts=report_time(record.get("ts")),
        run_id=entry.run_id,
        file=entry.file,
        line=entry.line,
        settled=tuple(_settled(entry.history)),
    )


def _settled(lines: Iterable[Mapping[str, Any]]) -> Iterable[Settled]:
    for line in lines:
        at, outcome, run_id = report_time(line.get("ts")), line.get("outcome"), line.get("run_id")
        if at is not None and isinstance(outcome, str) and isinstance(run_id, str):
            yield Settled(at, outcome, run_id)


def row_order(row: TargetRow) -> tuple[str, str, str]:
    return (row.project_id, row.instance_id, row.proxy_id)


def outcome_order(counts: Mapping[str, int]) -> list[str]:
    return [o for o in KNOWN_OUTCOMES if counts.get(o)] + sorted(o for o in counts if o not in KNOWN_OUTCOMES)


def _run_info(run: JournalRun, last_line: datetime | None) -> RunInfo:
    started, ended = run.started or {}, run.ended or {}
    start = report_time(started.get("ts"))
    duration = _float(ended.get("duration_s"))
    if duration is None and start is not None and last_line is not None:
        duration = max(0.0, (last_line - start).total_seconds())
    raw_requests = ended.get("requests")
    requests = (
        {kind: n for kind in REQUEST_KINDS if (n := _int(raw_requests.get(kind))) is not None}
        if isinstance(raw_requests, Mapping)
        else {}
    )
    limits = started.get("limits")
    return RunInfo(
        run_id=run.run_id,
        file=run.file,
        command=_text(started.get("command")),
        dry_run=run.dry_run,
        started=start,
        finished=run.finished,
        exit_code=run.exit_code,
        duration_s=duration,
        stop_reason=_text(ended.get("stop_reason")),
        requests=requests,
        rate_limit=_text(limits.get("rate")) if isinstance(limits, Mapping) else None,
    )


def _failure_groups(rows: Iterable[TargetRow]) -> tuple[FailureGroup, ...]:
    grouped: dict[str | None, list[TargetRow]] = {}
    for row in rows:
        grouped.setdefault(row.error_code, []).append(row)
    groups = [
        FailureGroup(
            error_code=code,
            count=len(members),
            outcomes=dict(Counter(m.outcome for m in members).most_common()),
            example=next((m.error_msg or m.note for m in members if m.error_msg or m.note), None),
        )
        for code, members in grouped.items()
    ]
    return tuple(sorted(groups, key=lambda g: (-g.count, g.error_code or "")))


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def report_time(value: object) -> datetime | None:
    """A report's `ts` (ISO 8601 with its offset) as an aware datetime; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def needs_a_look(summary: Summary) -> list[str]:
    """Why the verdict is NEEDS A LOOK, which `report` exits 3 on: the counts of the targets shown that are not
    done ("2 failed, 1 unknown"), then the summary's gaps (a run killed, targets without a line, ...)."""
    counts = ", ".join(f"{n} {o}" for o, n in summary.counts.items() if o not in QUIET_OUTCOMES)
    return [counts, *summary.gaps] if counts else list(summary.gaps)


def sent(requests: Mapping[str, int]) -> int:
    """Requests that went on the wire, which the rate limit is about (calls refused before sending are not)."""
    return requests.get("wire", requests.get("calls", 0))
