"""The reports a run resumed, found from any directory: beside the report that names them, then (older reports)
from the directory of the run; a missing one is a usage error naming both files, with ways out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clitools import cli
from reportfixtures import P1, P3, ReportBuilder, first_run, second_run, wave_plan

from orchestrator.errors import ExitCode, UsageError
from orchestrator.journal import read_journal, read_reports
from orchestrator.safety import resume_state

ONE, TWO = "run-one-0000", "run-two-0000"


def resuming(resumes: list[str], run_ids: list[str] | None = None) -> str:
    """The second run's report, naming `resumes` (and, as a real run does, the run ids it read from them)."""
    report = second_run(resumes=resumes)
    if run_ids is not None:
        report.lines[0]["resumed_run_ids"] = run_ids
    return report.text()


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run and its resumption in k/, written from k/ (so `resumes` names "one.jsonl"); the reader is in
    the parent directory."""
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "one.jsonl").write_text(first_run().text())
    (tmp_path / "k" / "two.jsonl").write_text(resuming(["one.jsonl"], [ONE]))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def names(paths: list[str], **options: object) -> list[str]:
    return [name for name, _ in read_reports(paths, **options).files]  # type: ignore[arg-type]


def test_a_resumed_report_is_found_beside_the_report_that_names_it(elsewhere: Path) -> None:
    """Read from another directory, k/two.jsonl's `resumes: [one.jsonl]` is k/one.jsonl, read first."""
    found = read_reports(["k/two.jsonl"])
    assert [name for name, _ in found.files] == [os.path.join("k", "one.jsonl"), "k/two.jsonl"]
    assert found.followed == (os.path.join("k", "one.jsonl"),)
    assert read_journal(["k/two.jsonl"]).run_ids == (ONE, TWO)


def test_an_older_report_naming_its_resumed_report_from_the_run_directory_still_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report written before the fix names the resumed report from the directory the run started in: when
    it is not beside the report, it is looked for from the current directory."""
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "one.jsonl").write_text(first_run().text())
    (tmp_path / "k" / "two.jsonl").write_text(resuming(["k/one.jsonl"], [ONE]))
    monkeypatch.chdir(tmp_path)
    assert names(["k/two.jsonl"]) == ["k/one.jsonl", "k/two.jsonl"]


def test_of_two_candidates_the_one_holding_the_resumed_runs_is_read(elsewhere: Path) -> None:
    """A file of the same name in the current directory that holds other runs does not replace the resumed one."""
    (elsewhere / "k" / "one.jsonl").rename(elsewhere / "k" / "old.jsonl")
    (elsewhere / "k" / "two.jsonl").write_text(resuming(["k/old.jsonl"], [ONE]))
    (elsewhere / "k" / "k").mkdir()
    (elsewhere / "k" / "k" / "old.jsonl").write_text(ReportBuilder("someone-else").target(P1, "failed").text())
    assert names(["k/two.jsonl"]) == ["k/old.jsonl", "k/two.jsonl"]


def test_a_missing_resumed_report_is_a_usage_error_naming_both_files(elsewhere: Path) -> None:
    """A deleted resumed report is not dropped silently: exit 2, naming the report, the missing one, where it
    was looked for, and the ways out."""
    os.remove("k/one.jsonl")
    with pytest.raises(UsageError) as caught:
        read_reports(["k/two.jsonl"])
    assert caught.value.exit_code == ExitCode.USAGE
    assert str(caught.value) == (
        "k/two.jsonl resumes one.jsonl, which cannot be read (looked for k/one.jsonl and one.jsonl): if it was "
        "moved, give it before k/two.jsonl on the command line; if it is gone for good, add --lost one.jsonl to "
        "read without it (its runs are then missing from what is read)"
    )


def test_for_resume_the_way_out_is_a_run_without_it(elsewhere: Path) -> None:
    """--resume names itself, and the safe way out of a lost report: a run that checks every target."""
    os.remove("k/one.jsonl")
    with pytest.raises(UsageError) as caught:
        read_reports(["k/two.jsonl"], option="--resume")
    message = str(caught.value)
    assert message.startswith("--resume: k/two.jsonl resumes one.jsonl, which cannot be read (looked for ")
    assert "--resume MOVED/one.jsonl --resume k/two.jsonl" in message
    assert "if it is gone for good, run without --resume: every target is then checked" in message


def test_a_moved_resumed_report_given_before_is_used(elsewhere: Path) -> None:
    """A resumed report moved elsewhere and named before the report that resumed it stands in for it: it holds
    the runs the report says it resumed."""
    os.makedirs("archive")
    os.rename("k/one.jsonl", "archive/one.jsonl")
    found = read_reports(["archive/one.jsonl", "k/two.jsonl"])
    assert [name for name, _ in found.files] == ["archive/one.jsonl", "k/two.jsonl"] and found.followed == ()


def test_a_moved_report_holding_other_runs_does_not_stand_in(elsewhere: Path) -> None:
    """A report named before that does not hold the resumed runs does not hide the missing one."""
    os.remove("k/one.jsonl")
    Path("other.jsonl").write_text(ReportBuilder("another-run").target(P1, "failed").text())
    with pytest.raises(UsageError) as caught:
        read_reports(["other.jsonl", "k/two.jsonl"])
    assert str(caught.value).startswith("k/two.jsonl resumes one.jsonl, which cannot be read")


def test_a_lost_report_is_left_out_and_said_so(elsewhere: Path) -> None:
    """--lost NAME reads without a resumed report that is gone for good; the journal says what was left out."""
    os.remove("k/one.jsonl")
    found = read_reports(["k/two.jsonl"], lost=["one.jsonl"])
    assert [name for name, _ in found.files] == ["k/two.jsonl"]
    assert found.left_out == ("k/two.jsonl resumes one.jsonl, left out (--lost): the runs in it are not read",)
    journal = read_journal(["k/two.jsonl"], lost=["k/one.jsonl"])  # the path looked for names it too
    assert journal.run_ids == (TWO,) and journal.left_out == found.left_out


def test_lost_naming_no_missing_report_is_a_usage_error(elsewhere: Path) -> None:
    """A --lost that names no missing resumed report (a typo, or a report found again) is refused."""
    with pytest.raises(UsageError) as caught:
        read_reports(["k/two.jsonl"], lost=["one.jsonl"])
    assert str(caught.value) == "--lost one.jsonl: no report read resumes a missing report of that name"


def test_reports_resumed_in_a_chain_are_found_from_each_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each `resumes` is resolved against its own report's directory, oldest first, each report read once."""
    for sub in ("a", "a/b", "a/b/c"):
        (tmp_path / sub).mkdir()
    (tmp_path / "a" / "one.jsonl").write_text(first_run().text())
    (tmp_path / "a" / "b" / "two.jsonl").write_text(resuming(["../one.jsonl"], [ONE]))
    three = ReportBuilder("run-three-000", resumes=["../../one.jsonl", "../two.jsonl"]).target(P3, "submitted")
    three.lines[0]["resumed_run_ids"] = [ONE, TWO]
    (tmp_path / "a" / "b" / "c" / "three.jsonl").write_text(three.text())
    monkeypatch.chdir(tmp_path)
    assert [os.path.normpath(n) for n in names(["a/b/c/three.jsonl"])] == [
        "a/one.jsonl", "a/b/two.jsonl", "a/b/c/three.jsonl",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "report.jsonl is not a report: it is empty"),
        (b"\x00\xff\xfe binary\n", "report.jsonl is not a report: no line of it is an orchestrator report line "
                                   "(line 1: not UTF-8 text)"),
        (b"version: 1\nname: wave1\n", "report.jsonl is not a report: no line of it is an orchestrator report line "
                                       "(line 1: not JSON (Expecting value at column 1))"),
    ],
)  # fmt: skip
def test_a_file_without_an_orchestrator_run_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, why: str
) -> None:
    """An empty file, random bytes or a plan given by mistake is refused (exit 2), naming the file."""
    monkeypatch.chdir(tmp_path)
    Path("report.jsonl").write_bytes(content)
    with pytest.raises(UsageError) as caught:
        read_reports(["report.jsonl"])
    assert str(caught.value) == why


# --- apply --resume -----------------------------------------------------------------------------------------------
def test_resume_reads_the_resumed_reports_from_another_directory(elsewhere: Path) -> None:
    """--resume k/two.jsonl skips what k/one.jsonl settled too, whatever the current directory."""
    state = resume_state(wave_plan(), ["k/two.jsonl"])
    assert state.started_fields["resumed_run_ids"] == [ONE, TWO]
    assert len(state.skip) == len(read_journal(["k/one.jsonl", "k/two.jsonl"]).done_keys) == 4


def test_resume_names_the_reports_relative_to_the_new_report(elsewhere: Path) -> None:
    """The new report's `resumes` names the reports from its own directory, so it reads from anywhere; to
    stdout, absolute paths."""
    state = resume_state(wave_plan(), ["k/two.jsonl"], report_path="k/three.jsonl")
    assert state.started_fields["resumes"] == ["one.jsonl", "two.jsonl"]
    state = resume_state(wave_plan(), ["k/two.jsonl"], report_path="reports/three.jsonl")
    assert state.started_fields["resumes"] == ["../k/one.jsonl", "../k/two.jsonl"]
    state = resume_state(wave_plan(), ["k/two.jsonl"], report_path="-")
    assert state.started_fields["resumes"] == [str(elsewhere / "k" / n) for n in ("one.jsonl", "two.jsonl")]


# --- orchestrator jobs --------------------------------------------------------------------------------------------
def test_jobs_names_a_missing_report_without_calling_it_resume(tmp_path: Path) -> None:
    """`jobs gone.jsonl` says it cannot read the report, not "--resume: ..." (jobs has no --resume)."""
    result = cli("jobs", "gone.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "orchestrator: error: cannot read the report gone.jsonl: No such file or directory\n"


def test_jobs_reads_the_reports_a_run_resumed(elsewhere: Path) -> None:
    """`jobs k/two.jsonl` follows two.jsonl's `resumes` like `report` does: a missing k/one.jsonl is named."""
    os.remove(elsewhere / "k" / "one.jsonl")
    result = cli("jobs", "k/two.jsonl", cwd=elsewhere)
    assert result.returncode == 2
    assert result.stderr.startswith("orchestrator: error: k/two.jsonl resumes one.jsonl, which cannot be read")


def test_an_empty_resumed_report_stands_for_no_run(elsewhere: Path) -> None:
    """A resumed report left empty (a run killed before its first line) adds no run; one that lost the runs it
    held is missing, and the message says what was found instead."""
    Path("k/none.jsonl").write_bytes(b"")
    Path("k/two.jsonl").write_text(resuming(["none.jsonl", "one.jsonl"], [ONE]))
    assert names(["k/two.jsonl"]) == ["k/one.jsonl", "k/two.jsonl"]
    Path("k/one.jsonl").write_bytes(b"")
    with pytest.raises(UsageError) as caught:
        read_reports(["k/two.jsonl"])
    first, second = str(caught.value).splitlines()  # one line per report missing: either held the lost run
    assert first.startswith(
        "k/two.jsonl resumes none.jsonl, which cannot be read (looked for k/none.jsonl and none.jsonl; "
        "k/none.jsonl: it is empty): "
    )
    assert second.startswith("k/two.jsonl resumes one.jsonl, which cannot be read")


def test_jobs_reads_without_a_lost_report_and_names_a_plan_it_cannot_find(elsewhere: Path) -> None:
    """`jobs --lost one.jsonl` reads k/two.jsonl without the report that is gone; the run's plan, named
    relative to where that run was started, is not found from here: the error says to give --plan."""
    os.remove(elsewhere / "k" / "one.jsonl")
    result = cli("jobs", "k/two.jsonl", "--lost", "one.jsonl", cwd=elsewhere)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("orchestrator: error: k/two.jsonl: its run's plan ") and line.endswith(
        "is not found from here; give --plan PLAN"
    )
    assert "k/two.jsonl resumes one.jsonl, left out (--lost)" in result.stderr  # a warning, not the error
