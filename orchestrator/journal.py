"""Reports read back as a journal, for `apply --resume`, `jobs`, `report` and `rollback`. Pure parsing, plus
the reader: `read_reports` reads the reports named and, before each, the reports its runs resumed
(`run_started.resumes`, found from any directory; one found nowhere is a UsageError unless given as lost), and
`read_journal` reads them as one journal.

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
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
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
    left_out: tuple[str, ...] = ()  # resumed reports not read (given as lost), and which report resumed them

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


def read_journal(
    paths: Sequence[str | os.PathLike[str]],
    *,
    option: str | None = None,
    lost: Collection[str] = (),
    dry_runs: bool = False,
) -> Journal:
    """The reports at `paths` and the reports their runs resumed (`read_reports`) as one journal."""
    found = read_reports(paths, option=option, lost=lost)
    return parse_journal(found.files, dry_runs=dry_runs, left_out=found.left_out)


# --- the report files: those named, and before each the reports its runs resumed ----------------------------------
@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Reports read from disk, oldest first: each one named preceded by the reports its runs resumed."""

    files: tuple[tuple[str, bytes], ...]  # (name, content)
    followed: tuple[str, ...] = ()  # read because a run resumed them (the caller did not name them)
    left_out: tuple[str, ...] = ()  # resumed reports given as lost: not read, and which report resumed them


def read_reports(
    paths: Sequence[str | os.PathLike[str]], *, option: str | None = None, lost: Collection[str] = ()
) -> ReportFiles:
    """Read the reports at `paths` (oldest first) and, before each, the reports its runs resumed.

    `run_started.resumes` names them by path. A relative path is looked for from the directory of the report
    that names it (`safety.resume_state` writes it so, given the new report's path), then from the current
    directory (older versions wrote it from the directory the run started in); of two files found, the one
    holding the runs the report says it resumed (`resumed_run_ids`) is read. A resumed report found nowhere
    is a UsageError naming both reports, unless a report named before it holds the runs it resumed (it was
    moved, and given on the command line), or `lost` names it (gone for good: it is left out, and
    `left_out` says so).

    `option` is where the paths came from, for messages (`--resume`; None: the command's REPORT arguments).
    A file that cannot be read, or holds no orchestrator report line, is a UsageError naming it.
    """
    finder = _Finder(option, lost)
    for path in paths:
        finder.visit(os.fspath(path))
    return finder.found()


class _Finder:
    def __init__(self, option: str | None, lost: Collection[str]) -> None:
        self.option = option
        self.prefix = f"{option}: " if option else ""
        self.lost = {os.path.normpath(name): name for name in lost}
        self.lost_used: set[str] = set()
        self.files: list[tuple[str, bytes]] = []
        self.followed: list[str] = []
        self.left_out: list[str] = []
        self.seen: set[str] = set()  # real paths: a report named twice, or resumed twice, is read once
        self.run_ids: set[str] = set()  # the runs of the reports read so far

    def found(self) -> ReportFiles:
        unused = [name for key, name in self.lost.items() if key not in self.lost_used]
        if unused:
            raise UsageError(f"--lost {unused[0]}: no report read resumes a missing report of that name")
        return ReportFiles(tuple(self.files), tuple(self.followed), tuple(self.left_out))

    def visit(self, name: str, data: bytes | None = None, *, resumed_by: str | None = None) -> None:
        real = os.path.realpath(name)
        if real in self.seen:
            return
        self.seen.add(real)
        if data is None:
            try:
                data = _read(name)
            except OSError as exc:
                raise UsageError(f"{self.prefix}cannot read the report {name}: {exc.strerror or exc}") from None
        problem = _not_a_report(data)
        if problem:
            which = f"{name} (resumed by {resumed_by})" if resumed_by else name
            raise UsageError(f"{self.prefix}{which} is not a report: {problem}")
        for started in _run_starts(data):
            self.follow(name, started)
        self.files.append((name, data))
        self.run_ids |= _run_ids(data)

    def follow(self, naming: str, started: Mapping[str, Any]) -> None:
        """Read, before `naming`, the reports its run (`started`, its run_started line) resumed."""
        resumes, ids = started.get("resumes"), started.get("resumed_run_ids")
        wanted = {i for i in ids if isinstance(i, str)} if isinstance(ids, list) else set()
        missing = []
        for written in resumes if isinstance(resumes, list) else ():
            if isinstance(written, str) and written and not self.find(naming, written, wanted):
                missing.append(written)
        lost = {written: self.lost_key(naming, written) for written in missing}
        self.lost_used.update(key for key in lost.values() if key is not None)
        if not missing or (wanted and wanted <= self.run_ids):
            return  # nothing missing, or the reports named before hold every run it resumed
        unreadable = [self.unreadable(naming, written) for written, key in lost.items() if key is None]
        if unreadable:
            raise UsageError("\n".join(unreadable))  # one line per report missing
        self.left_out += [
            f"{naming} resumes {written}, left out (--lost): the runs in it are not read" for written in lost
        ]

    def find(self, naming: str, written: str, wanted: set[str]) -> bool:
        """Visit the report `naming` names `written`; False if it is nowhere to be read."""
        chosen: tuple[str, bytes] | None = None
        for candidate in _candidates(naming, written):
            if os.path.realpath(candidate) in self.seen:
                return True  # read already (named before, or resumed by another report)
            try:
                data = _read(candidate)
            except OSError:
                continue
            if _not_a_report(data):
                continue  # an empty file holds no run to read; if the run resumed runs from it, they are missing
            if not wanted or wanted & _run_ids(data):
                chosen = (candidate, data)
                break
            chosen = chosen or (candidate, data)  # the first found, unless a later one holds the runs
        if chosen is None:
            return False
        self.followed.append(chosen[0])
        self.visit(*chosen, resumed_by=naming)
        return True

    def lost_key(self, naming: str, written: str) -> str | None:
        """The --lost name that names this missing report (as written, or as a path looked for), if any."""
        looked = {os.path.realpath(c) for c in _candidates(naming, written)}
        return next(
            (key for key in self.lost if key == os.path.normpath(written) or os.path.realpath(key) in looked), None
        )

    def unreadable(self, naming: str, written: str) -> str:
        candidates = _candidates(naming, written)
        reasons = []
        for candidate in candidates:
            try:
                problem = _not_a_report(_read(candidate))
            except OSError as exc:
                problem = None if isinstance(exc, FileNotFoundError) else exc.strerror or str(exc)
            if problem:
                reasons.append(f"{candidate}: {problem}")
        looked = " and ".join(candidates) + "".join(f"; {reason}" for reason in reasons)
        head = f"{self.prefix}{naming} resumes {written}, which cannot be read (looked for {looked})"
        if self.option == "--resume":
            moved = f"--resume MOVED/{os.path.basename(written)} --resume {naming}"
            return (
                f"{head}: if it was moved, give it first ({moved}); if it is gone for good, run without --resume: "
                "every target is then checked against its live mode, and those at their goal are left alone"
            )
        return (
            f"{head}: if it was moved, give it before {naming} on the command line; if it is gone for good, add "
            f"--lost {written} to read without it (its runs are then missing from what is read)"
        )


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _candidates(naming: str, written: str) -> list[str]:
    """Where a report named `written` in the report `naming` may be: beside `naming`, then from here."""
    beside = os.path.join(os.path.dirname(naming), written)
    return [beside] if os.path.normpath(beside) == os.path.normpath(written) else [beside, written]


def _not_a_report(data: bytes) -> str | None:
    """None if `data` has a line of an orchestrator report (a JSON object with event and run_id); else why not."""
    if not data.strip():
        return "it is empty"
    first = ""
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.strip():
            record = _Reader.parse_line(raw)
            if not isinstance(record, str):
                return None
            first = first or f" (line {number}: {record})"
    return f"no line of it is an orchestrator report line{first}"


def _run_starts(data: bytes) -> list[dict[str, Any]]:
    """The run_started lines of a report."""
    records = (_Reader.parse_line(raw) for raw in data.split(b"\n") if b'"run_started"' in raw)
    return [r for r in records if not isinstance(r, str) and r["event"] == "run_started"]


_RUN_ID: Final = re.compile(rb'"run_id":\s*"([^"\\]+)"')  # a key: a quote inside a JSON string is escaped


def _run_ids(data: bytes) -> set[str]:
    """The run ids of a report's lines (to tell which runs a file holds without parsing every line)."""
    return {match.decode("utf-8", "replace") for match in _RUN_ID.findall(data)}


def parse_journal(
    files: Iterable[tuple[str, bytes]], *, dry_runs: bool = False, left_out: Sequence[str] = ()
) -> Journal:
    """The journal of reports given as (name, content) pairs, oldest first; `dry_runs`: read their lines too;
    `left_out`: why resumed reports were not read (`ReportFiles.left_out`), kept for the summary."""
    reader = _Reader(dry_runs=dry_runs)
    names = []
    for name, data in files:
        names.append(name)
        reader.read_file(name, data)
    return replace(reader.journal(tuple(names)), left_out=tuple(left_out))


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
