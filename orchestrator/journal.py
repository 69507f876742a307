"""Reports read back as a journal, for `apply --resume`. Pure parsing, plus `read_journal`, a thin reader.

A report (see orchestrator.report) has one JSON object per line; a run killed with -9 may leave its last
line cut short. `parse_journal` reads one or more reports, in the order given (oldest first), and keeps:

* each target's latest outcome, by (project_id, instance_id, proxy_id). Later lines win, with one exception:
  `not_started` says a run did not touch the target, so it never replaces an earlier outcome (a run stopped
  by its window must not turn an earlier `submitted` back into work to do);
* the runs (run_started / run_finished), their plan digests, and the jobs polled;
* every line it could not use, with file and line number: a torn last line is expected after a kill -9
  and is ignored; a garbled line elsewhere is ignored too, but it means the file was damaged.

Lines of dry runs (`preview`, `apply --dry-run`) are skipped: they sent nothing (`dry_runs=True` reads them
too, for a summary of previews).

Each entry and run also keeps the report lines it was read from (`record`, `history`, `started`, `ended`), so
that summaries, retry and rollback plans read every field without parsing the reports a second time.

`done_keys` are the targets never to send again: `submitted`, `unchanged`, `completed`, `verified`.
`retry_keys` are all others with a recorded outcome (`failed`, `not_started`, `unknown`, `drifted`,
`job_failed`, and any outcome this version does not know): re-check them against the live state, then
change them if they are not at their goal. A key of a whole instance (proxy_id `all`) means its listing
failed. Targets of the plan absent from the journal were never reached: they run as usual.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from .errors import UsageError

Key = tuple[str, str, str]  # (project_id, instance_id, proxy_id)

DONE_OUTCOMES: Final = frozenset({"submitted", "unchanged", "completed", "verified"})
RETRY_OUTCOMES: Final = frozenset({"failed", "not_started", "unknown", "drifted", "job_failed"})
_NO_NEWS: Final = frozenset({"not_started"})  # never replaces an earlier outcome
_PREVIEW_ONLY: Final = frozenset({"would_change"})


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A target's latest outcome, and where it was recorded."""

    key: Key
    outcome: str
    run_id: str
    mode_before: str | None
    mode_target: str | None
    job_id: str | None
    file: str
    line: int
    # The line that set this outcome, and every target line of this key read (oldest first, `not_started`
    # lines that replaced nothing included): fields the journal itself does not need (error_code, ts, ...).
    record: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    history: tuple[Mapping[str, Any], ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class JournalRun:
    run_id: str
    file: str
    plan: str | None
    plan_digest: str | None
    dry_run: bool
    finished: bool  # a run_finished line was written: False after a kill -9
    exit_code: int | None
    started: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)  # its run_started line
    ended: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)  # its run_finished line


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be used. `torn`: the file's last line, cut short (expected after a kill -9)."""

    file: str
    line: int
    reason: str
    torn: bool

    def __str__(self) -> str:
        what = "torn last line (a run killed while writing), ignored" if self.torn else "garbled line, ignored"
        return f"{self.file}:{self.line}: {what}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Journal:
    files: tuple[str, ...]
    latest: Mapping[Key, JournalEntry]
    runs: tuple[JournalRun, ...]
    bad_lines: tuple[BadLine, ...]
    jobs: Mapping[Key, tuple[str, str]] = field(default_factory=dict)  # key -> (job_id, job_status), latest

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(run.run_id for run in self.runs)

    @property
    def plan_digests(self) -> tuple[str, ...]:
        """The distinct plan digests of the (non-dry) runs, in order of first appearance."""
        return tuple(dict.fromkeys(r.plan_digest for r in self.runs if r.plan_digest and not r.dry_run))

    @property
    def done_keys(self) -> frozenset[Key]:
        return frozenset(k for k, e in self.latest.items() if e.outcome in DONE_OUTCOMES)

    @property
    def retry_keys(self) -> frozenset[Key]:
        return frozenset(k for k, e in self.latest.items() if e.outcome not in DONE_OUTCOMES)

    @property
    def torn(self) -> tuple[BadLine, ...]:
        return tuple(b for b in self.bad_lines if b.torn)

    @property
    def garbled(self) -> tuple[BadLine, ...]:
        return tuple(b for b in self.bad_lines if not b.torn)


def read_journal(paths: Sequence[str | os.PathLike[str]], *, dry_runs: bool = False) -> Journal:
    """Read the reports at `paths` (oldest first) as one journal; UsageError if one cannot be read."""
    files = []
    for path in paths:
        name = os.fspath(path)
        try:
            with open(name, "rb") as handle:
                files.append((name, handle.read()))
        except OSError as exc:
            raise UsageError(f"--resume: cannot read the report {name}: {exc.strerror or exc}") from None
    return parse_journal(files, dry_runs=dry_runs)


def parse_journal(files: Iterable[tuple[str, bytes]], *, dry_runs: bool = False) -> Journal:
    """The journal of reports given as (name, content) pairs, oldest first; `dry_runs`: read their lines too."""
    reader = _Reader(dry_runs=dry_runs)
    names = []
    for name, data in files:
        names.append(name)
        reader.read_file(name, data)
    return reader.journal(tuple(names))


class _Reader:
    def __init__(self, *, dry_runs: bool = False) -> None:
        self.dry_runs = dry_runs
        self.latest: dict[Key, JournalEntry] = {}
        self.history: dict[Key, list[Mapping[str, Any]]] = {}
        self.runs: dict[str, dict[str, Any]] = {}  # run_id -> JournalRun fields, in order of appearance
        self.bad: list[BadLine] = []
        self.jobs: dict[Key, tuple[str, str]] = {}

    def read_file(self, name: str, data: bytes) -> None:
        lines = data.split(b"\n")
        complete = lines[-1] == b""  # ends with a newline: no line was cut short
        if complete:
            lines.pop()
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            torn = number == len(lines) and not complete
            record = self.parse_line(raw)
            if isinstance(record, str):
                self.bad.append(BadLine(name, number, record, torn))
                continue
            problem = self.take(record, name, number)
            if problem:
                self.bad.append(BadLine(name, number, problem, torn))

    @staticmethod
    def parse_line(raw: bytes) -> dict[str, Any] | str:
        """The line's JSON object, or why it is not one."""
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return "not UTF-8 text"
        except json.JSONDecodeError as exc:
            return f"not JSON ({exc.msg} at column {exc.colno})"
        if not isinstance(record, dict):
            return "not a JSON object"
        if not isinstance(record.get("event"), str) or not isinstance(record.get("run_id"), str):
            return "no event or run_id"
        return record

    def take(self, record: dict[str, Any], name: str, number: int) -> str | None:
        """Use one report line; return a problem if a line of a known event lacks what it needs."""
        event, run_id = record["event"], record["run_id"]
        if event == "run_started":
            self.runs.setdefault(run_id, {"file": name, "finished": False, "exit_code": None})
            self.runs[run_id].update(
                plan=_text(record.get("plan")),
                plan_digest=_text(record.get("plan_digest")),
                dry_run=record.get("dry_run") is True,
                started=record,
            )
            return None
        run = self.runs.setdefault(run_id, {"file": name, "finished": False, "exit_code": None})
        if event == "run_finished":
            run["finished"] = True
            code = record.get("exit_code")
            run["exit_code"] = code if isinstance(code, int) and not isinstance(code, bool) else None
            run["ended"] = record
            return None
        if event not in ("target", "job"):
            return None  # an event of a later version: nothing to resume from
        key = _key(record)
        if key is None:
            return f"a {event} line without project_id, instance_id and proxy_id"
        if run.get("dry_run") and not self.dry_runs:
            return None
        if event == "job":
            job_id, status = _text(record.get("job_id")), _text(record.get("job_status"))
            if job_id and status:
                self.jobs[key] = (job_id, status)
            return None
        outcome = _text(record.get("outcome"))
        if outcome is None:
            return "a target line without outcome"
        if outcome in _PREVIEW_ONLY and not self.dry_runs:
            return None
        self.history.setdefault(key, []).append(record)
        if outcome in _NO_NEWS and key in self.latest:
            return None
        self.latest[key] = JournalEntry(
            key=key,
            outcome=outcome,
            run_id=run_id,
            mode_before=_text(record.get("mode_before")),
            mode_target=_text(record.get("mode_target")),
            job_id=_text(record.get("job_id")),
            file=name,
            line=number,
            record=record,
        )
        return None

    def journal(self, names: tuple[str, ...]) -> Journal:
        runs = tuple(
            JournalRun(
                run_id=run_id,
                file=fields["file"],
                plan=fields.get("plan"),
                plan_digest=fields.get("plan_digest"),
                dry_run=fields.get("dry_run", False),
                finished=fields["finished"],
                exit_code=fields["exit_code"],
                started=fields.get("started"),
                ended=fields.get("ended"),
            )
            for run_id, fields in self.runs.items()
        )
        latest = {key: replace(entry, history=tuple(self.history[key])) for key, entry in self.latest.items()}
        return Journal(names, latest, runs, tuple(self.bad), dict(self.jobs))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _key(record: Mapping[str, Any]) -> Key | None:
    parts = [_text(record.get(k)) for k in ("project_id", "instance_id", "proxy_id")]
    if any(p is None for p in parts):
        return None
    project_id, instance_id, proxy_id = (str(p) for p in parts)
    return (project_id, instance_id, proxy_id)
