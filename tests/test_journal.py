"""Reports read back as a journal: latest outcome per target, runs, digests, torn and garbled lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fakes import PROJECT, instance_id, proxy_id

from orchestrator.errors import UsageError
from orchestrator.journal import BadLine, Journal, JournalRun, parse_journal, read_journal
from orchestrator.report import Outcome, Report, TargetOutcome

I1 = instance_id(1)
A, B, C, D = (proxy_id(n) for n in range(1, 5))


def key(proxy: str) -> tuple[str, str, str]:
    return (PROJECT, I1, proxy)


def report_text(
    run_id: str,
    outcomes: list[tuple[str, Outcome]],
    *,
    digest: str = "d1",
    dry_run: bool = False,
    finished: bool = True,
) -> str:
    """A report written by the real Report writer: run_started, one target line per outcome, run_finished."""
    stream = io.StringIO()
    report = Report(stream, run_id=run_id)
    report.run_started(plan="p.yaml", plan_digest=digest, command="apply", dry_run=dry_run, targets=len(outcomes))
    for proxy, outcome in outcomes:
        report.target(TargetOutcome(PROJECT, I1, proxy, "session", "global", outcome, job_id="job-1"))
    if finished:
        report.run_finished(exit_code=3, duration_s=1.0)
    return stream.getvalue()


def journal_of(*texts: str) -> Journal:
    return parse_journal([(f"r{n}.jsonl", text.encode()) for n, text in enumerate(texts, start=1)])


def test_done_and_retry_keys_follow_the_outcomes() -> None:
    """submitted and unchanged are done; failed, unknown and not_started are to retry."""
    text = report_text(
        "run-1",
        [(A, Outcome.SUBMITTED), (B, Outcome.UNCHANGED), (C, Outcome.FAILED), (D, Outcome.UNKNOWN)],
    )
    journal = parse_journal([("r.jsonl", text.encode())])
    assert journal.done_keys == {key(A), key(B)}
    assert journal.retry_keys == {key(C), key(D)}
    assert journal.latest[key(A)].job_id == "job-1" and journal.latest[key(A)].line == 2
    assert journal.bad_lines == ()


def test_later_outcomes_and_completed_or_drifted_are_understood() -> None:
    """completed and verified count as done, drifted and job_failed as retry (outcomes of later versions)."""
    lines = [
        {"event": "target", "run_id": "r", "project_id": PROJECT, "instance_id": I1, "proxy_id": p, "outcome": o}
        for p, o in [(A, "completed"), (B, "verified"), (C, "drifted"), (D, "job_failed")]
    ]
    journal = parse_journal([("r.jsonl", "".join(json.dumps(line) + "\n" for line in lines).encode())])
    assert journal.done_keys == {key(A), key(B)} and journal.retry_keys == {key(C), key(D)}


def test_an_outcome_of_unknown_kind_is_retried_not_trusted() -> None:
    """An outcome this version does not know is not done: it is re-checked against the live state."""
    line = {"event": "target", "run_id": "r", "project_id": PROJECT, "instance_id": I1, "proxy_id": A, "outcome": "zzz"}
    journal = parse_journal([("r.jsonl", (json.dumps(line) + "\n").encode())])
    assert journal.retry_keys == {key(A)} and journal.done_keys == frozenset()


def test_a_later_run_overrides_an_earlier_outcome() -> None:
    """A target that failed in run 1 and was submitted in run 2 is done; the runs are listed in order."""
    first = report_text("run-1", [(A, Outcome.FAILED), (B, Outcome.FAILED)])
    second = report_text("run-2", [(A, Outcome.SUBMITTED)], digest="d2", finished=False)
    journal = parse_journal([("r.jsonl", (first + second).encode())])
    assert journal.done_keys == {key(A)} and journal.retry_keys == {key(B)}
    assert journal.latest[key(A)].run_id == "run-2"
    assert journal.run_ids == ("run-1", "run-2")
    assert journal.plan_digests == ("d1", "d2")
    assert journal.runs == (
        JournalRun("run-1", "r.jsonl", "p.yaml", "d1", dry_run=False, finished=True, exit_code=3),
        JournalRun("run-2", "r.jsonl", "p.yaml", "d2", dry_run=False, finished=False, exit_code=None),
    )


def test_not_started_never_undoes_an_earlier_outcome() -> None:
    """A run stopped before touching a target (not_started) leaves its earlier `submitted` standing."""
    first = report_text("run-1", [(A, Outcome.SUBMITTED)])
    second = report_text("run-2", [(A, Outcome.NOT_STARTED), (B, Outcome.NOT_STARTED)])
    journal = journal_of(first, second)
    assert journal.done_keys == {key(A)} and journal.retry_keys == {key(B)}


def test_multiple_files_are_read_in_the_order_given() -> None:
    """Two report files form one journal; the later file's outcome wins and both files are named."""
    journal = parse_journal(
        [
            ("old.jsonl", report_text("run-1", [(A, Outcome.UNKNOWN)]).encode()),
            ("new.jsonl", report_text("run-2", [(A, Outcome.UNCHANGED)]).encode()),
        ]
    )
    assert journal.files == ("old.jsonl", "new.jsonl")
    assert journal.latest[key(A)].file == "new.jsonl" and journal.done_keys == {key(A)}
    assert journal.plan_digests == ("d1",)


def test_dry_runs_are_ignored() -> None:
    """Lines of a dry run (a preview's `unchanged` or `would_change`) are not outcomes to resume from."""
    preview = report_text("dry", [(A, Outcome.UNCHANGED), (B, Outcome.WOULD_CHANGE)], digest="dx", dry_run=True)
    journal = journal_of(preview)
    assert journal.latest == {} and journal.plan_digests == ()
    assert journal.runs[0].dry_run


def test_a_torn_last_line_is_ignored_and_reported() -> None:
    """A report cut in the middle of its last line (kill -9) is readable; the torn line is reported as torn."""
    text = report_text("run-1", [(A, Outcome.SUBMITTED), (B, Outcome.FAILED)], finished=False)
    lines = text.splitlines(keepends=True)
    cut = "".join(lines[:-1]) + lines[-1][:40]  # the last line cut after 40 characters
    journal = parse_journal([("r.jsonl", cut.encode())])
    assert journal.done_keys == {key(A)} and key(B) not in journal.latest
    assert len(journal.torn) == 1 and journal.garbled == ()
    assert journal.torn[0].line == 3
    assert str(journal.torn[0]).startswith("r.jsonl:3: torn last line (a run killed while writing), ignored: not JSON")
    assert journal.runs[0].finished is False


def test_a_complete_last_line_without_newline_is_kept() -> None:
    """A last line that is whole JSON but lacks its newline is a valid line, not a torn one."""
    text = report_text("run-1", [(A, Outcome.SUBMITTED)], finished=False).rstrip("\n")
    journal = parse_journal([("r.jsonl", text.encode())])
    assert journal.done_keys == {key(A)} and journal.bad_lines == ()


def test_a_garbled_line_in_the_middle_is_reported_and_the_rest_read() -> None:
    """A damaged line between good ones is reported as garbled (not torn); the lines after it still count."""
    good = report_text("run-1", [(A, Outcome.FAILED), (B, Outcome.SUBMITTED)]).splitlines(keepends=True)
    damaged = [*good[:2], '{"event": "target", "run_id": "run-1", "proj\n', *good[2:]]
    journal = parse_journal([("r.jsonl", "".join(damaged).encode())])
    assert journal.done_keys == {key(B)} and journal.retry_keys == {key(A)}
    assert [(b.line, b.torn) for b in journal.bad_lines] == [(3, False)]
    assert str(journal.bad_lines[0]).startswith("r.jsonl:3: garbled line, ignored: not JSON")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\xff\xfe\n", "not UTF-8 text"),
        (b"[1, 2]\n", "not a JSON object"),
        (b'{"event": "target"}\n', "no event or run_id"),
        (b'{"event": "target", "run_id": "r", "project_id": "p"}\n', "a target line without project_id, instance_id and proxy_id"),
        (b'{"event": "target", "run_id": "r", "project_id": "p", "instance_id": "i", "proxy_id": "x"}\n', "a target line without outcome"),
    ],
)  # fmt: skip
def test_lines_that_are_not_report_lines_are_reported_with_why(line: bytes, reason: str) -> None:
    """Each kind of unusable line is reported with its reason."""
    journal = parse_journal([("r.jsonl", b"\n" + line)])
    assert journal.bad_lines == (BadLine("r.jsonl", 2, reason, torn=False),)


def test_job_lines_give_the_latest_job_per_target() -> None:
    """A polled job is recorded per target with its id and status."""
    stream = io.StringIO()
    report = Report(stream, run_id="run-1")
    report.job(project_id=PROJECT, instance_id=I1, proxy_id=A, job_id="job-7", job_status="Failed", fail_reason="x")
    journal = parse_journal([("r.jsonl", stream.getvalue().encode())])
    assert journal.jobs == {key(A): ("job-7", "Failed")}


def test_unknown_events_are_skipped_silently() -> None:
    """An event of a later version is neither an outcome nor a problem."""
    journal = parse_journal([("r.jsonl", b'{"event": "heartbeat", "run_id": "r"}\n')])
    assert journal.bad_lines == () and journal.latest == {}


def test_read_journal_reads_files(tmp_path: Path) -> None:
    """read_journal reads the named files in order."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(report_text("run-1", [(A, Outcome.FAILED)]))
    second.write_text(report_text("run-2", [(A, Outcome.SUBMITTED)]))
    journal = read_journal([first, str(second)])
    assert journal.done_keys == {key(A)} and journal.run_ids == ("run-1", "run-2")


def test_an_unreadable_report_is_a_usage_error(tmp_path: Path) -> None:
    """A missing report file is a usage error naming it, and the option that named it (if any): `jobs`,
    `report` and `rollback` take reports as arguments, not as --resume."""
    with pytest.raises(UsageError) as caught:
        read_journal([tmp_path / "gone.jsonl"])
    assert str(caught.value) == f"cannot read the report {tmp_path / 'gone.jsonl'}: No such file or directory"
    with pytest.raises(UsageError) as caught:
        read_journal([tmp_path / "gone.jsonl"], option="--resume")
    assert str(caught.value).startswith("--resume: cannot read the report ")


def test_entries_keep_their_report_lines_and_history() -> None:
    """An entry carries the line that set its outcome and every line of its target, oldest first."""
    first = report_text("run-1", [(A, Outcome.FAILED)])
    second = report_text("run-2", [(A, Outcome.SUBMITTED)])
    third = report_text("run-3", [(A, Outcome.NOT_STARTED)])
    entry = journal_of(first, second, third).latest[key(A)]
    assert entry.record["run_id"] == "run-2" and entry.record["outcome"] == "submitted"
    assert [line["outcome"] for line in entry.history] == ["failed", "submitted", "not_started"]


def test_runs_keep_their_started_and_finished_lines() -> None:
    """A run carries its run_started and run_finished lines; a killed run has no finished line."""
    journal = journal_of(report_text("run-1", [(A, Outcome.FAILED)]), report_text("run-2", [], finished=False))
    done, killed = journal.runs
    assert done.started is not None and done.started["command"] == "apply"
    assert done.ended is not None and done.ended["duration_s"] == 1.0
    assert killed.started is not None and killed.ended is None


def test_dry_runs_can_be_read_on_request() -> None:
    """With dry_runs=True the lines of a preview are read, would_change included."""
    preview = report_text("dry", [(A, Outcome.UNCHANGED), (B, Outcome.WOULD_CHANGE)], digest="dx", dry_run=True)
    journal = parse_journal([("p.jsonl", preview.encode())], dry_runs=True)
    assert {k: e.outcome for k, e in journal.latest.items()} == {key(A): "unchanged", key(B): "would_change"}
