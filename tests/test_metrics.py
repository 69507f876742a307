"""Prometheus textfile metrics: valid exposition format, the last success kept, written atomically."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import UsageError
from orchestrator.metrics import check_metrics_path, last_success, render_metrics, write_metrics

FINISHED: dict[str, Any] = {
    "ts": "2026-12-07T01:10:00Z",
    "event": "run_finished",
    "run_id": "r",
    "counts": {"submitted": 280, "unchanged": 12, "failed": 5, "unknown": 1, "not_started": 2},
    "exit_code": 3,
    "duration_s": 603.25,
    "requests": {"calls": 612, "wire": 615, "retries": 12, "throttled": 3, "job_polls": 300},
}
END_TS = 1796605800.0  # 2026-12-07T01:10:00Z

# The text exposition format (version 0.0.4): comments, then samples `name{label="value",...} value`.
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_VALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
_SAMPLE = re.compile(
    rf"({_NAME})(\{{(?:[a-zA-Z_][a-zA-Z0-9_]*={_LABEL_VALUE})(?:,[a-zA-Z_][a-zA-Z0-9_]*={_LABEL_VALUE})*\}})? (\S+)"
)
_HELP = re.compile(rf"# HELP ({_NAME}) \S.*")
_TYPE = re.compile(rf"# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)")


def parse_exposition(text: str) -> dict[str, list[tuple[str, float]]]:
    """Check `text` line by line against the exposition format; return the samples of each metric."""
    assert text.endswith("\n")
    helped: set[str] = set()
    typed: set[str] = set()
    samples: dict[str, list[tuple[str, float]]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP"):
            match = _HELP.fullmatch(line)
            assert match, line
            helped.add(match[1])
        elif line.startswith("# TYPE"):
            match = _TYPE.fullmatch(line)
            assert match and match[1] not in samples, line  # TYPE comes before the metric's samples
            typed.add(match[1])
        else:
            match = _SAMPLE.fullmatch(line)
            assert match, line
            samples.setdefault(match[1], []).append((match[2] or "", float(match[3])))
    assert set(samples) <= helped == typed
    return samples


def test_the_metrics_are_valid_exposition_format_with_help_and_type() -> None:
    """Every metric has HELP and TYPE lines, an orchestrator_ name and well-formed samples."""
    samples = parse_exposition(render_metrics(FINISHED, plan="wave1", end_ts=END_TS))
    assert all(name.startswith("orchestrator_") for name in samples)
    assert samples["orchestrator_last_run_duration_seconds"] == [('{plan="wave1"}', 603.25)]
    assert samples["orchestrator_last_run_exit_code"] == [('{plan="wave1"}', 3.0)]
    assert samples["orchestrator_last_run_timestamp_seconds"] == [('{plan="wave1"}', END_TS)]


def test_targets_are_counted_per_outcome() -> None:
    """One sample per outcome of the run's counts, labelled with plan and outcome."""
    samples = parse_exposition(render_metrics(FINISHED, plan="wave1", end_ts=END_TS))
    assert dict(samples["orchestrator_last_run_targets"]) == {
        '{plan="wave1",outcome="failed"}': 5.0,
        '{plan="wave1",outcome="not_started"}': 2.0,
        '{plan="wave1",outcome="submitted"}': 280.0,
        '{plan="wave1",outcome="unchanged"}': 12.0,
        '{plan="wave1",outcome="unknown"}': 1.0,
    }


def test_counts_given_by_the_caller_win_over_the_records() -> None:
    """The caller's counts are the ones written."""
    samples = parse_exposition(render_metrics(FINISHED, {"submitted": 1}, plan="p", end_ts=END_TS))
    assert samples["orchestrator_last_run_targets"] == [('{plan="p",outcome="submitted"}', 1.0)]


def test_requests_retries_and_throttling_are_exported() -> None:
    """calls, wire requests, retries, 429s and job polls of run_finished.requests each get a gauge."""
    samples = parse_exposition(render_metrics(FINISHED, plan="wave1", end_ts=END_TS))
    values = {name: value[0][1] for name, value in samples.items()}
    assert values["orchestrator_last_run_requests"] == 612
    assert values["orchestrator_last_run_wire_requests"] == 615
    assert values["orchestrator_last_run_retries"] == 12
    assert values["orchestrator_last_run_throttled"] == 3
    assert values["orchestrator_last_run_job_polls"] == 300


def test_a_failed_run_keeps_the_earlier_success_time() -> None:
    """A run that did not exit 0 writes the last success time it was given, not its own end."""
    samples = parse_exposition(render_metrics(FINISHED, plan="wave1", end_ts=END_TS, last_success_ts=1000.0))
    assert samples["orchestrator_last_success_timestamp_seconds"] == [('{plan="wave1"}', 1000.0)]
    without = parse_exposition(render_metrics(FINISHED, plan="wave1", end_ts=END_TS))
    assert "orchestrator_last_success_timestamp_seconds" not in without


def test_a_successful_run_is_the_last_success() -> None:
    """A run that exited 0 records its end as the last success."""
    samples = parse_exposition(
        render_metrics({**FINISHED, "exit_code": 0}, plan="p", end_ts=END_TS, last_success_ts=1.0)
    )
    assert samples["orchestrator_last_success_timestamp_seconds"] == [('{plan="p"}', END_TS)]


def test_label_values_are_escaped() -> None:
    """Backslashes, quotes and newlines in a label value are escaped as the format requires."""
    text = render_metrics({"counts": {'od"d\\\n': 1}, "exit_code": 0}, plan="p", end_ts=1.0)
    samples = parse_exposition(text)
    assert samples["orchestrator_last_run_targets"] == [('{plan="p",outcome="od\\"d\\\\\\n"}', 1.0)]


def test_a_record_with_missing_or_odd_fields_still_renders_valid_metrics() -> None:
    """No requests, no exit code and non-numeric counts leave those samples out instead of failing."""
    samples = parse_exposition(render_metrics({"counts": {"failed": "x", "submitted": 2}}, plan="p", end_ts=1.0))
    assert "orchestrator_last_run_exit_code" not in samples and "orchestrator_last_run_requests" not in samples
    assert samples["orchestrator_last_run_targets"] == [('{plan="p",outcome="submitted"}', 2.0)]


def test_write_metrics_writes_a_readable_file_and_no_temporary(tmp_path: Path) -> None:
    """The file appears whole, readable by other users (node_exporter), with nothing else left in the directory."""
    path = tmp_path / "orchestrator-wave1.prom"
    write_metrics(str(path), {**FINISHED, "exit_code": 0}, plan="wave1")
    samples = parse_exposition(path.read_text())
    assert samples["orchestrator_last_run_timestamp_seconds"] == [('{plan="wave1"}', END_TS)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["orchestrator-wave1.prom"]


def test_write_metrics_keeps_the_last_success_of_the_file_it_replaces(tmp_path: Path) -> None:
    """A failed run after a successful one still reports the successful run's time."""
    path = str(tmp_path / "o.prom")
    write_metrics(path, {**FINISHED, "exit_code": 0}, plan="wave1", end_ts=500.0)
    write_metrics(path, FINISHED, plan="wave1", end_ts=900.0)
    assert last_success(Path(path).read_text(), plan="wave1") == 500.0
    assert last_success(Path(path).read_text(), plan="another") is None


def test_write_metrics_without_a_ts_uses_now(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record without ts is stamped with the current time."""
    monkeypatch.setattr("orchestrator.metrics.time.time", lambda: 1234.5)
    path = tmp_path / "o.prom"
    write_metrics(str(path), {"counts": {}, "exit_code": 0}, plan="p")
    assert last_success(path.read_text(), plan="p") == 1234.5


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the rename fails, the previous metrics stay as they were and the temporary file is removed."""
    path = tmp_path / "o.prom"
    path.write_text("old\n")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("orchestrator.files.os.replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_metrics(str(path), FINISHED, plan="p")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["o.prom"]


def test_last_success_ignores_garbage() -> None:
    """An unreadable or non-finite earlier value is no last success."""
    assert last_success('orchestrator_last_success_timestamp_seconds{plan="p"} nope\n', plan="p") is None
    assert last_success('orchestrator_last_success_timestamp_seconds{plan="p"} NaN\n', plan="p") is None
    assert last_success("", plan="p") is None


def test_a_metrics_path_must_be_a_prom_file_in_an_existing_directory(tmp_path: Path) -> None:
    """node_exporter reads *.prom only, and the directory must exist: both are usage errors."""
    assert check_metrics_path(str(tmp_path / "o.prom")) == str(tmp_path / "o.prom")
    with pytest.raises(UsageError, match=r"must end in \.prom"):
        check_metrics_path(str(tmp_path / "o.txt"))
    with pytest.raises(UsageError, match="does not exist"):
        check_metrics_path(str(tmp_path / "missing" / "o.prom"))
