"""The JSON-lines report: schema, append-only writing, secret redaction."""

import json
from pathlib import Path

from orchestrator.report import Outcome, Report, TargetOutcome


def outcome(**overrides: object) -> TargetOutcome:
    fields: dict[str, object] = dict(
        project_id="p" * 32,
        instance_id="i" * 32 + "in07",
        proxy_id="x" * 31 + "po01",
        mode_before="eventual",
        mode_target="session",
        outcome=Outcome.SUBMITTED,
        job_id="j-1",
        attempts=1,
    )
    fields.update(overrides)
    return TargetOutcome(**fields)  # type: ignore[arg-type]


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_line_starts_with_ts_event_run_id(tmp_path: Path) -> None:
    """Each line is a JSON object whose first keys are ts (UTC ISO 8601), event and run_id."""
    path = tmp_path / "r.jsonl"
    with Report.open(str(path), run_id="run-1") as report:
        report.run_started(plan="p.yaml", targets=1)
        report.target(outcome())
        report.run_finished(exit_code=0, duration_s=1.23456)
    lines = read_lines(path)
    assert [line["event"] for line in lines] == ["run_started", "target", "run_finished"]
    for line in lines:
        assert list(line)[:3] == ["ts", "event", "run_id"]
        assert line["run_id"] == "run-1"
        assert str(line["ts"]).endswith("Z")
    assert lines[1]["outcome"] == "submitted" and lines[1]["job_id"] == "j-1"
    assert lines[2]["counts"]["submitted"] == 1 and lines[2]["duration_s"] == 1.235


def test_each_line_is_on_disk_before_the_next_event(tmp_path: Path) -> None:
    """A target line is flushed when written, so a process that dies right after loses nothing."""
    path = tmp_path / "r.jsonl"
    report = Report.open(str(path), run_id="run-1")
    report.target(outcome())
    assert read_lines(path)[0]["event"] == "target"  # read while the report is still open
    report.close()


def test_existing_report_is_appended_to(tmp_path: Path) -> None:
    """Opening an existing report appends a new run; earlier lines are never truncated."""
    path = tmp_path / "nested" / "r.jsonl"
    for run in ("a", "b"):
        with Report.open(str(path), run_id=run) as report:
            report.target(outcome())
    assert [line["run_id"] for line in read_lines(path)] == ["a", "b"]


def test_target_lines_carry_every_schema_field(tmp_path: Path) -> None:
    """A target line always has every documented field, null when not applicable."""
    path = tmp_path / "r.jsonl"
    with Report.open(str(path), run_id="r") as report:
        report.target(outcome(outcome=Outcome.FAILED, job_id=None, http_status=400, error_code="DBS.200001"))
    line = read_lines(path)[0]
    for key in (
        "project_id",
        "instance_id",
        "proxy_id",
        "mode_before",
        "mode_target",
        "outcome",
        "job_id",
        "attempts",
        "wire_attempts",
        "http_status",
        "error_code",
        "error_msg",
        "elapsed_ms",
        "note",
    ):
        assert key in line
    assert line["job_id"] is None and line["http_status"] == 400


def test_secrets_are_redacted_everywhere(tmp_path: Path) -> None:
    """A known secret echoed in an error message never reaches the report."""
    path = tmp_path / "r.jsonl"
    secret = "MIIsupersecrettokenvalue"
    with Report.open(str(path), run_id="r", secrets=[secret]) as report:
        report.target(outcome(error_msg=f"bad token {secret}!"))
        report.run_started(details={"nested": [secret]})
    text = path.read_text()
    assert secret not in text
    assert "bad token ***!" in text


def test_global_log_level_never_filters_the_report(tmp_path: Path) -> None:
    """The human logs' level (configured globally, e.g. warnings only) has no effect on report lines."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    try:
        path = tmp_path / "r.jsonl"
        with Report.open(str(path), run_id="r") as report:
            report.run_started(plan="p.yaml")
            report.target(outcome())
        assert [line["event"] for line in read_lines(path)] == ["run_started", "target"]
    finally:
        structlog.reset_defaults()
