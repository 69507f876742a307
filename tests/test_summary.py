"""Summaries of reports: latest outcome per target, failures by error code, duration and rate, filters, renderers."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fakes import PROJECT, proxy_id
from reportfixtures import I1, I2, I3, P1, P2, P3, P4, P5, P6, ReportBuilder, first_run, second_run

from orchestrator.errors import UsageError
from orchestrator.report import Outcome, Report, TargetOutcome
from orchestrator.summary import (
    CSV_FIELDS,
    KNOWN_OUTCOMES,
    Filters,
    Summary,
    journal_for_summary,
    make_filters,
    needs_a_look,
    summarize,
)
from orchestrator.summarytext import format_duration, render_csv, render_json, render_table


def both_runs(filters: Filters | None = None) -> Summary:
    """The summary of a run stopped by its window and of the run that resumed it."""
    files = [("one.jsonl", first_run().data()), ("two.jsonl", second_run().data())]
    return summarize(journal_for_summary(files), filters or Filters())


def test_every_outcome_of_the_report_schema_is_known() -> None:
    """The summary lists every outcome the report writer can write."""
    assert {o.value for o in Outcome} <= set(KNOWN_OUTCOMES)


def test_the_latest_outcome_per_target_wins_across_resumed_reports() -> None:
    """Two reports of a run and its resumption count each target once, by its latest outcome."""
    summary = both_runs()
    assert summary.counts == {"submitted": 2, "unchanged": 2, "failed": 2}
    assert summary.total == 6 and len(summary.rows) == 6
    assert [r.run_id for r in summary.runs] == ["run-one-0000", "run-two-0000"]
    by_proxy = {row.proxy_id: row for row in summary.rows}
    assert by_proxy[P3].outcome == "submitted" and by_proxy[P3].file == "two.jsonl"
    assert by_proxy[P1].outcome == "submitted" and by_proxy[P1].run_id == "run-one-0000"


def test_a_whole_instance_line_superseded_by_its_proxies_is_not_counted() -> None:
    """An instance not started in run 1 and listed per proxy in run 2 shows its proxies, not the old line."""
    summary = both_runs()
    assert [(r.instance_id, r.proxy_id) for r in summary.rows if r.instance_id == I3] == [(I3, P6)]


def test_a_whole_instance_line_stays_when_nothing_came_after_it() -> None:
    """An instance whose listing failed in the last run it appeared in is one row with proxy_id all."""
    summary = summarize(journal_for_summary([("one.jsonl", first_run().data())]))
    assert [(r.proxy_id, r.outcome) for r in summary.rows if r.instance_id == I3] == [("all", "not_started")]


def test_failures_are_grouped_by_error_code_largest_group_first() -> None:
    """Failing targets are grouped by error_code, counted by outcome, with the first message as example."""
    report = (
        ReportBuilder("r")
        .target(P1, "failed", error_code="DBS.200019", error_msg="busy one")
        .target(P2, "failed", error_code="DBS.200019", error_msg="busy two")
        .target(P3, "unknown", error_code="DBS.200019", error_msg="lost")
        .target(P4, "drifted", note="mode is eventual, the preview saw session")
        .target(P5, "not_started", note="cutoff")
        .target(P6, "submitted")
    )
    summary = summarize(journal_for_summary([("r.jsonl", report.data())]))
    groups = [(g.error_code, g.count, dict(g.outcomes), g.example) for g in summary.failures]
    assert groups == [
        ("DBS.200019", 3, {"failed": 2, "unknown": 1}, "busy one"),
        (None, 1, {"drifted": 1}, "mode is eventual, the preview saw session"),
    ]


def test_duration_and_effective_rate_add_up_over_the_runs() -> None:
    """Duration is the runs' total; the effective rate is the requests sent (21 + 11) over the finished runs'
    duration (15 s): what the rate limit bounds, not the calls, some of which may never have been sent."""
    summary = both_runs()
    assert summary.duration_s == pytest.approx(15.0)
    assert summary.requests == {"calls": 30, "wire": 32, "retries": 4, "throttled": 2, "job_polls": 6}
    assert summary.effective_rate == pytest.approx(32 / 15)
    assert summary.rate_limit == "5/s"


def test_a_run_killed_before_run_finished_lasts_until_its_last_line() -> None:
    """A run without run_finished is estimated from its start to its last target line, and has no requests."""
    report = ReportBuilder("killed").target(P1, "submitted", at=3.0).target(P2, "failed", at=42.5)
    summary = summarize(journal_for_summary([("k.jsonl", report.data())]))
    (run,) = summary.runs
    assert run.finished is False and run.duration_s == pytest.approx(42.5) and run.requests == {}
    assert summary.effective_rate is None and summary.requests == {}
    assert "no run_finished line" in render_table(summary)


def test_dry_runs_are_left_out_when_a_real_run_exists() -> None:
    """A preview's would_change lines do not count next to an apply's outcomes."""
    preview = ReportBuilder("dry", dry_run=True, command="preview").target(P2, "would_change")
    applied = ReportBuilder("real").target(P1, "submitted").finished(at=2.0)
    summary = summarize(journal_for_summary([("p.jsonl", preview.data()), ("a.jsonl", applied.data())]))
    assert summary.counts == {"submitted": 1} and summary.dry_run is False


def test_only_dry_runs_make_a_preview_summary() -> None:
    """Reports of dry runs alone are summarised as a preview, would_change counted."""
    preview = (
        ReportBuilder("dry", dry_run=True, command="preview")
        .target(P1, "would_change")
        .target(P2, "unchanged", before="global")
        .finished(at=1.0)
    )
    preview.lines[0]["targets"] = 2
    summary = summarize(journal_for_summary([("p.jsonl", preview.data())]))
    assert summary.dry_run is True and summary.counts == {"unchanged": 1, "would_change": 1}
    assert "preview: 1 would change" in render_table(summary)


def test_filters_keep_matching_targets_and_count_only_them() -> None:
    """--outcome and --instance narrow the rows and the counts; the total still counts every target."""
    summary = both_runs(make_filters(["failed"], [I2]))
    assert [(r.instance_id, r.proxy_id) for r in summary.rows] == [(I2, P5)]
    assert summary.counts == {"failed": 1} and summary.total == 6
    assert [g.error_code for g in summary.failures] == ["DBS.200001"]


def test_filters_accept_repeats_commas_and_any_case() -> None:
    """`--outcome failed,Unknown --outcome drifted` is three outcomes; instance IDs are trimmed."""
    filters = make_filters(["failed,Unknown ", "drifted"], [f" {I1} ", f"{I2},{I3}"])
    assert filters.outcomes == {"failed", "unknown", "drifted"}
    assert filters.instances == {I1, I2, I3}


def test_an_unknown_outcome_is_a_usage_error_with_a_suggestion() -> None:
    """A misspelt outcome is refused in one line that suggests the right one and lists the allowed."""
    with pytest.raises(UsageError) as caught:
        make_filters(["faild"])
    message = str(caught.value)
    assert message.startswith("--outcome: unknown outcome 'faild' (did you mean 'failed'?); allowed: submitted,")
    assert "\n" not in message


def test_the_table_leads_with_a_verdict_and_lists_what_needs_a_look() -> None:
    """The table's first lines say how much needs a look; done targets are not listed without filters."""
    table = render_table(both_runs())
    lines = table.splitlines()
    assert lines[0] == "2 reports, 2 runs: 6 targets"
    assert lines[1] == "NEEDS A LOOK: 2 failed"
    assert "failures by error code:" in table
    listed = table.split("targets that need a look (2):")[1]
    assert P5 in listed and P6 in listed and P1 not in listed
    assert "effective rate 2.13 requests/s sent (limit 5/s)" in table


def test_the_table_columns_are_aligned() -> None:
    """Every row of a table section starts its columns where the header's start."""
    table = render_table(both_runs())
    section = table.split("targets that need a look (2):\n")[1].splitlines()
    header, rows = section[0], section[1:]
    for name in ("instance", "proxy", "mode", "error", "message"):
        column = header.index(name)
        assert all(row[column - 2 : column] == "  " and row[column] != " " for row in rows), name


def test_a_filtered_table_lists_every_matching_target() -> None:
    """With a filter the table lists every matching target, done ones too."""
    table = render_table(both_runs(make_filters(["submitted"])))
    assert "targets (2):" in table and P1 in table and P3 in table
    assert "(2 match outcome submitted)" in table.splitlines()[0]


def test_the_table_shows_control_characters_escaped() -> None:
    """An escape sequence in an error message reaches the terminal as text, not as a control sequence."""
    report = ReportBuilder("r").target(P1, "failed", error_code="X", error_msg="red \x1b[31m alert\x07")
    table = render_table(summarize(journal_for_summary([("r.jsonl", report.data())])))
    assert "\x1b" not in table and "\x07" not in table
    assert "red \\x1b[31m alert\\x07" in table


def test_the_table_of_nothing_says_so() -> None:
    """A filter that matches nothing says what it looked for."""
    table = render_table(both_runs(make_filters(["drifted"])))
    assert "no targets match outcome drifted" in table


def test_json_is_one_document_with_every_part() -> None:
    """The JSON output is one object: runs, counts, failures, duration, requests, rate and the targets."""
    document = json.loads(render_json(both_runs()))
    assert document["counts"] == {"submitted": 2, "unchanged": 2, "failed": 2}
    assert document["total"] == 6 and document["matched"] == 6 and len(document["targets"]) == 6
    assert document["failures"] == [
        {"error_code": "DBS.200001", "count": 2, "outcomes": {"failed": 2}, "example": "internal"}
    ]
    assert document["duration_s"] == 15.0 and document["effective_rate"] == round(32 / 15, 3)
    assert document["runs"][0]["stop_reason"] == "the change window's cutoff was reached"
    assert document["runs"][0]["started"] == "2026-12-07T01:00:00Z"
    target = next(t for t in document["targets"] if t["proxy_id"] == P5)
    assert target["error_code"] == "DBS.200001" and target["http_status"] == 500 and target["file"] == "two.jsonl"


def test_csv_has_one_row_per_target_with_the_documented_columns() -> None:
    """The CSV has the documented header and one row per target, readable by csv.DictReader."""
    rows = list(csv.DictReader(io.StringIO(render_csv(both_runs()))))
    assert tuple(rows[0]) == CSV_FIELDS
    assert len(rows) == 6
    failed = next(r for r in rows if r["proxy_id"] == P5)
    assert failed == {
        "project_id": PROJECT, "instance_id": I2, "proxy_id": P5, "mode_before": "session", "mode_target": "global",
        "outcome": "failed", "job_id": "", "error_code": "DBS.200001", "error_msg": "internal",
    }  # fmt: skip


def test_csv_keeps_awkward_text_intact_and_defuses_formulas() -> None:
    """Commas, quotes and newlines survive the CSV round trip; a cell starting with = gets a leading quote."""
    report = (
        ReportBuilder("r")
        .target(P1, "failed", error_code="E", error_msg='a, "quoted"\nsecond line')
        .target(P2, "failed", error_code="E", error_msg='=HYPERLINK("http://x")')
    )
    rows = list(csv.DictReader(io.StringIO(render_csv(summarize(journal_for_summary([("r", report.data())]))))))
    assert rows[0]["error_msg"] == 'a, "quoted"\nsecond line'
    assert rows[1]["error_msg"] == '\'=HYPERLINK("http://x")'


def test_lines_of_the_real_report_writer_are_summarised() -> None:
    """A report written by orchestrator.report.Report is read with every field the summary shows."""
    stream = io.StringIO()
    with Report(stream, run_id="real-run") as report:
        report.run_started(plan="p.yaml", plan_digest="d", command="apply", dry_run=False, targets=2,
                           limits={"rate": "10/s"})  # fmt: skip
        report.target(TargetOutcome(PROJECT, I1, P1, "session", "global", Outcome.SUBMITTED, job_id="job-9"))
        report.target(
            TargetOutcome(
                PROJECT,
                I1,
                P2,
                "session",
                "global",
                Outcome.FAILED,
                http_status=400,
                error_code="DBS.280001",
                error_msg="bad request",
            )
        )
        report.run_finished(exit_code=3, duration_s=2.0, requests={"calls": 4, "wire": 4, "retries": 0,
                                                                   "throttled": 0, "job_polls": 1})  # fmt: skip
    summary = summarize(journal_for_summary([("real.jsonl", stream.getvalue().encode())]))
    assert summary.counts == {"submitted": 1, "failed": 1}
    assert summary.rows[0].job_id == "job-9" and summary.rows[0].ts is not None
    assert summary.rows[1].error_code == "DBS.280001" and summary.rows[1].http_status == 400
    assert summary.runs[0].exit_code == 3 and summary.effective_rate == pytest.approx(2.0)


def test_unreadable_lines_are_counted_and_named() -> None:
    """A torn last line is ignored, named in bad_lines, and mentioned in the table's first line."""
    data = first_run().data() + b'{"ts": "2026-12-07T01:00:11Z", "event": "tar'
    summary = summarize(journal_for_summary([("one.jsonl", data)]))
    assert len(summary.bad_lines) == 1 and summary.bad_lines[0].startswith("one.jsonl:9: torn last line")
    assert render_table(summary).splitlines()[0].endswith("; 1 unreadable lines ignored")


def test_fields_of_the_wrong_type_do_not_break_a_summary() -> None:
    """A target line with numbers or objects where text is expected is summarised, not a crash."""
    line = {"ts": 5, "event": "target", "run_id": "r", "project_id": PROJECT, "instance_id": I1, "proxy_id": P1,
            "outcome": "failed", "error_code": 42, "error_msg": {"nested": True}, "http_status": "500"}  # fmt: skip
    summary = summarize(journal_for_summary([("r", (json.dumps(line) + "\n").encode())]))
    (row,) = summary.rows
    assert (row.error_code, row.error_msg, row.http_status, row.ts) == ("42", None, None, None)
    assert "42" in render_table(summary)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.04, "0.0s"), (12.34, "12.3s"), (59.9, "59.9s"), (245, "4m05s"), (7387, "2h03m07s")]
)
def test_durations_read_at_a_glance(seconds: float, text: str) -> None:
    """Durations are written short: seconds, then minutes and seconds, then hours."""
    assert format_duration(seconds) == text


# --- what the reports lack ------------------------------------------------------------------------------------
def killed_run(lines: int = 39, targets: int = 300) -> ReportBuilder:
    """A run of `targets` targets killed (or still running) after `lines` of them: no run_finished line."""
    report = ReportBuilder("abc12345-dead-beef")
    report.lines[0]["targets"] = targets
    for n in range(lines):
        report.target(proxy_id(100 + n), "submitted")
    return report


def test_a_killed_run_needs_a_look_saying_what_is_missing() -> None:
    """A run without run_finished, whose targets have no line past the 39th, is not "ok": the verdict says
    the run has no run_finished line and how many targets have no line."""
    summary = summarize(journal_for_summary([("t.jsonl", killed_run().data())]))
    assert summary.counts == {"submitted": 39}
    assert needs_a_look(summary) == [
        "run abc12345 has no run_finished line (killed, or still running)",
        "261 of 300 targets have no line",
    ]
    assert render_table(summary).splitlines()[1] == (
        "NEEDS A LOOK: run abc12345 has no run_finished line (killed, or still running); "
        "261 of 300 targets have no line"
    )
    assert json.loads(render_json(summary))["gaps"] == list(summary.gaps)


def test_a_finished_run_with_targets_without_a_line_needs_a_look() -> None:
    """A finished run whose lines cover fewer targets than it started with (lines lost) needs a look."""
    report = killed_run(lines=2, targets=6).finished(at=3.0)
    summary = summarize(journal_for_summary([("t.jsonl", report.data())]))
    assert needs_a_look(summary) == ["4 of 6 targets have no line"]


def test_gaps_need_a_look_whatever_the_filters() -> None:
    """A target without a line matches no filter: a killed run needs a look even when the targets shown are
    done, and when no target matches at all."""
    data = killed_run().data()
    for filters in (make_filters(["submitted"]), make_filters(["failed"])):
        summary = summarize(journal_for_summary([("t.jsonl", data)]), filters)
        assert render_table(summary).splitlines()[1].startswith("NEEDS A LOOK: run abc12345 has no run_finished")


def test_a_run_and_its_resumption_together_have_every_target() -> None:
    """The runs of one plan version count together: the resumed run's lines and the first run's cover it."""
    assert both_runs().gaps == ()


def test_a_resumed_run_read_alone_counts_the_targets_it_skipped() -> None:
    """A resumed run writes no line for what an earlier run settled: its run_finished `skipped` counts them
    (the end-of-run summary reads the run's own lines alone)."""
    alone = second_run()
    alone.lines[-1]["skipped"] = 2
    assert summarize(journal_for_summary([("two.jsonl", alone.data())])).gaps == ()


def test_a_jobs_run_is_not_expected_to_have_a_line_per_target() -> None:
    """`orchestrator jobs` writes lines for the jobs it followed only: no target is missing from it."""
    jobs = ReportBuilder("jobs-run", command="jobs").target(P1, "completed").finished(at=1.0)
    summary = summarize(journal_for_summary([("j.jsonl", jobs.data())]))
    assert summary.gaps == () and needs_a_look(summary) == []
    assert render_table(summary).splitlines()[1] == "ok: every target is done"


def test_a_left_out_report_needs_a_look() -> None:
    """A resumed report read without (--lost) is named in the verdict: its targets are not in the summary."""
    note = "two.jsonl resumes one.jsonl, left out (--lost): the runs in it are not read"
    summary = summarize(journal_for_summary([("two.jsonl", second_run().data())], left_out=[note]))
    assert summary.gaps[-1] == note and note in render_table(summary).splitlines()[1]
