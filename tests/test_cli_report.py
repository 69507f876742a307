"""The report, rollback, init and plan from-csv commands, through their parser and handlers."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakes import PROJECT
from reportfixtures import I1, I2, I3, P1, P2, P3, P4, P5, P6, PLAN_TEXT, ReportBuilder, first_run, second_run

from orchestrator.cli import EXIT_CODES_HELP
from orchestrator.cli_report import Handler, add_commands
from orchestrator.errors import OrchestratorError
from orchestrator.plan import load_plan
from orchestrator.planwrite import EXAMPLE_INSTANCE_ID


@dataclass
class Result:
    code: int
    out: str
    err: str


def parser_and_handlers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser], dict[str, Handler]]:
    """A parser built the way cli.build_parser builds its own, with these commands added."""
    parser = argparse.ArgumentParser(prog="orchestrator")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0)
    common.add_argument("-q", "--quiet", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    handlers = add_commands(sub, common)
    return parser, dict(sub.choices), handlers


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None) -> Result:
    """Run one command as cli.main would: its exit code, or an OrchestratorError's, with stdout and stderr."""
    parser, _, handlers = parser_and_handlers()
    args = parser.parse_args(argv)
    try:
        code = int(handlers[args.command](args))
    except OrchestratorError as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        code = int(exc.exit_code)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with the plan and the two reports of a run and its resumption."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "wave1.yaml").write_text(PLAN_TEXT)
    (tmp_path / "one.jsonl").write_text(first_run().text())
    (tmp_path / "two.jsonl").write_text(second_run(resumes=["one.jsonl"]).text())
    return tmp_path


# --- the parser ---------------------------------------------------------------------------------------------------
def test_the_commands_and_their_handlers_are_returned() -> None:
    """add_commands adds report, rollback, init and plan, and returns a handler for each."""
    _, commands, handlers = parser_and_handlers()
    assert set(handlers) == {"report", "rollback", "init", "plan"} == set(commands)
    assert all(callable(handler) for handler in handlers.values())


def test_every_command_has_help_a_description_and_an_example() -> None:
    """Each new parser, from-csv included, has a description and an epilog with an example and the exit codes."""
    _, commands, _ = parser_and_handlers()
    nested = next(a for a in commands["plan"]._actions if isinstance(a, argparse._SubParsersAction))
    from_csv = nested.choices["from-csv"]
    for name, parser in [*commands.items(), ("plan from-csv", from_csv)]:
        assert parser.description, name
        assert parser.epilog is not None and "example" in parser.epilog and EXIT_CODES_HELP in parser.epilog, name
        assert f"orchestrator {name}" in parser.epilog, name
        assert "-q" in parser.format_help() or name == "plan", name


def test_the_commands_are_listed_with_help_in_the_top_level_help() -> None:
    """`orchestrator --help` lists each new command with its one-line help."""
    parser, _, _ = parser_and_handlers()
    text = parser.format_help()
    for name in ("report", "rollback", "init", "plan"):
        assert f"    {name} " in text, name


# --- report -------------------------------------------------------------------------------------------------------
def test_report_prints_the_table_of_a_run_and_the_run_it_resumed(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report two.jsonl` reads one.jsonl too (named in run_started.resumes) and says so on stderr."""
    result = run(capsys, "report", "two.jsonl")
    assert result.code == 3  # like apply's: some targets are not done
    assert result.out.splitlines()[:2] == ["2 reports, 2 runs: 6 targets", "NEEDS A LOOK: 2 failed"]
    assert result.err == "orchestrator: also reading the reports these runs resumed: one.jsonl\n"


def test_report_exits_3_only_while_a_target_shown_needs_a_look(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exit code follows the verdict: 3 for NEEDS A LOOK (in every format), 0 once every target shown is
    done, whether the reports are all done or the filters show only the done ones."""
    assert run(capsys, "report", "two.jsonl", "--format", "json", "-q").code == 3
    shown_done = run(capsys, "report", "two.jsonl", "--outcome", "submitted", "--outcome", "unchanged")
    assert shown_done.code == 0 and "ok: every target is done" in shown_done.out
    done = ReportBuilder("done")
    for instance, proxy in ((I1, P1), (I1, P2), (I1, P3), (I2, P4), (I2, P5), (I3, P6)):
        done.target(proxy, "submitted", instance=instance)
    Path("done.jsonl").write_text(done.finished(at=2.0).text())
    assert run(capsys, "report", "done.jsonl", "--format", "csv").code == 0


def test_report_json_and_csv_are_clean_on_stdout(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json prints one document, --format csv one row per target; notes go to stderr only."""
    document = json.loads(run(capsys, "report", "one.jsonl", "two.jsonl", "--format", "json").out)
    assert document["counts"] == {"submitted": 2, "unchanged": 2, "failed": 2}
    rows = list(csv.DictReader(io.StringIO(run(capsys, "report", "two.jsonl", "--format", "csv", "-q").out)))
    assert len(rows) == 6 and {r["outcome"] for r in rows} == {"submitted", "unchanged", "failed"}


def test_report_filters_by_outcome_and_instance(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--outcome (repeatable) and --instance narrow the targets shown."""
    result = run(capsys, "report", "two.jsonl", "--outcome", "failed", "--outcome", "unknown", "--instance", I3,
                 "--format", "csv")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [(r["instance_id"], r["proxy_id"], r["outcome"]) for r in rows] == [(I3, P6, "failed")]


def test_a_misspelt_outcome_is_exit_2_in_one_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--outcome faild is refused with a suggestion, exit 2, nothing on stdout."""
    result = run(capsys, "report", "one.jsonl", "--outcome", "faild")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("orchestrator: error: --outcome: unknown outcome 'faild' (did you mean 'failed'?)")


def test_a_missing_report_is_exit_2_naming_it(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A report that cannot be read is a usage error naming the file."""
    result = run(capsys, "report", "gone.jsonl")
    assert result.code == 2
    assert result.err == "orchestrator: error: cannot read the report gone.jsonl: No such file or directory\n"


def test_torn_lines_are_warned_about_on_stderr(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A torn last line is a warning on stderr; the summary is still printed."""
    with open("one.jsonl", "a") as handle:
        handle.write('{"event": "tar')
    result = run(capsys, "report", "one.jsonl")
    assert result.code == 3 and "6 targets" in result.out
    assert "orchestrator: warning: one.jsonl:9: torn last line" in result.err


def test_report_writes_a_retry_plan(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--retry-plan with --plan writes a valid plan of the targets still to do, and says what to run next."""
    result = run(capsys, "report", "two.jsonl", "--retry-plan", "retry.yaml", "--plan", "plans/wave1.yaml")
    assert result.code == 3  # the plan is written; the reports still need a look
    plan = load_plan("retry.yaml")
    assert {t.key for t in plan.targets} == {(PROJECT, I2, P5), (PROJECT, I3, P6)}
    assert "retry plan written to retry.yaml; next: orchestrator preview retry.yaml" in result.err


def test_the_retry_plan_follows_the_filters(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --instance, the retry plan holds only that instance's targets."""
    run(capsys, "report", "two.jsonl", "--instance", I2, "--retry-plan", "retry.yaml", "--plan", "plans/wave1.yaml")
    assert {t.key for t in load_plan("retry.yaml").targets} == {(PROJECT, I2, P5)}


def test_a_retry_plan_is_not_overwritten_without_force(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing --retry-plan file is refused (exit 2) unless --force."""
    Path("retry.yaml").write_text("mine\n")
    result = run(capsys, "report", "two.jsonl", "--retry-plan", "retry.yaml", "--plan", "plans/wave1.yaml")
    assert result.code == 2 and "--retry-plan: retry.yaml exists; pass --force to overwrite it" in result.err
    assert Path("retry.yaml").read_text() == "mine\n" and result.out == ""
    result = run(capsys, "report", "two.jsonl", "--retry-plan", "retry.yaml", "--plan", "plans/wave1.yaml", "--force")
    assert result.code == 3 and load_plan("retry.yaml").targets


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--retry-plan", "r.yaml"), "--retry-plan needs --plan PLAN"),
        (("--plan", "plans/wave1.yaml"), "--plan is used with --retry-plan only"),
        (("--retry-plan", "-", "--plan", "plans/wave1.yaml"), "--retry-plan: give a file name"),
        (("--html", "-"), "--html: give a file name"),
    ],
)
def test_retry_plan_options_are_checked(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    """--retry-plan needs --plan, --plan needs --retry-plan, and neither file may be stdout."""
    result = run(capsys, "report", "one.jsonl", *argv)
    assert result.code == 2 and message in result.err and result.out == ""


def test_a_retry_plan_for_another_plan_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A --plan whose digest the reports do not record is refused, and no file is written."""
    Path("plans/other.yaml").write_text(PLAN_TEXT.replace("name: wave1", "name: other"))
    result = run(capsys, "report", "two.jsonl", "--retry-plan", "retry.yaml", "--plan", "plans/other.yaml")
    assert result.code == 2 and "--plan plans/other.yaml is not the plan these reports ran" in result.err
    assert not Path("retry.yaml").exists()


def test_nothing_to_retry_writes_no_plan_and_exits_0(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """When every target succeeded, no retry plan is written and the command still succeeds."""
    done = ReportBuilder("done")
    for instance, proxy in ((I1, P1), (I1, P2), (I1, P3), (I2, P4), (I2, P5), (I3, P6)):
        done.target(proxy, "submitted", instance=instance)
    Path("done.jsonl").write_text(done.finished(at=2.0).text())
    result = run(capsys, "report", "done.jsonl", "--retry-plan", "retry.yaml", "--plan", "plans/wave1.yaml")
    assert result.code == 0 and not Path("retry.yaml").exists()
    assert "nothing to retry" in result.err and "no retry plan written" in result.err


def test_report_writes_an_html_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--html writes the HTML report beside the table on stdout."""
    result = run(capsys, "report", "two.jsonl", "--html", "wave1.html")
    assert result.code == 3 and "NEEDS A LOOK" in result.out
    html = Path("wave1.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and P6 in html
    assert "HTML report written to wave1.html" in result.err


def test_quiet_prints_only_what_was_asked(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-q drops the notes on stderr; the summary asked for is still printed."""
    result = run(capsys, "report", "two.jsonl", "--html", "w.html", "-q")
    assert result.err == "" and result.out.startswith("2 reports")


@pytest.fixture
def elsewhere(workdir: Path) -> Path:
    """The run and its resumption moved to k/ (two.jsonl names one.jsonl, as a run started in k/ wrote it); the
    commands run from the parent directory."""
    (workdir / "k").mkdir()
    for name in ("one.jsonl", "two.jsonl"):
        (workdir / name).rename(workdir / "k" / name)
    return workdir


def test_report_from_another_directory_reads_the_runs_resumed(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report k/two.jsonl` finds one.jsonl beside it: the same summary as from k/, not a fraction of it."""
    result = run(capsys, "report", "k/two.jsonl")
    assert result.code == 3 and result.out.splitlines()[:2] == [
        "2 reports, 2 runs: 6 targets",
        "NEEDS A LOOK: 2 failed",
    ]
    assert result.err == "orchestrator: also reading the reports these runs resumed: k/one.jsonl\n"


def test_rollback_from_another_directory_rolls_back_the_resumed_runs_changes(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rollback k/two.jsonl` puts back what the first run changed too (P1, P4), not only the second's (P3)."""
    result = run(capsys, "rollback", "k/two.jsonl", "--plan", "plans/wave1.yaml", "--out", "rollback.yaml")
    assert result.code == 0
    targets = {(t.proxy_id, t.mode) for t in load_plan("rollback.yaml").targets}
    assert targets == {(P1, "session"), (P3, "session"), (P4, "eventual")}


@pytest.mark.parametrize("command", ["report", "rollback"])
def test_a_deleted_resumed_report_is_exit_2_naming_both(
    elsewhere: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """A resumed report that cannot be found is not dropped silently: exit 2, one line naming both files and
    the way out; nothing written."""
    os.remove("k/one.jsonl")
    extra = ("--plan", "plans/wave1.yaml", "--out", "rollback.yaml") if command == "rollback" else ()
    result = run(capsys, command, "k/two.jsonl", *extra)
    assert result.code == 2 and result.out == "" and not Path("rollback.yaml").exists()
    assert result.err.startswith(
        "orchestrator: error: k/two.jsonl resumes one.jsonl, which cannot be read (looked for k/one.jsonl and "
        "one.jsonl): if it was moved, give it before k/two.jsonl on the command line; if it is gone for good, "
        "add --lost one.jsonl"
    )


def test_a_moved_resumed_report_named_before_is_read(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The first way out: the resumed report, moved, named on the command line before the report."""
    os.rename("k/one.jsonl", "old-one.jsonl")
    two = json.loads(Path("k/two.jsonl").read_text().splitlines()[0])
    two["resumed_run_ids"] = ["run-one-0000"]  # as apply --resume records it
    lines = Path("k/two.jsonl").read_text().splitlines()
    Path("k/two.jsonl").write_text("\n".join([json.dumps(two), *lines[1:]]) + "\n")
    result = run(capsys, "report", "old-one.jsonl", "k/two.jsonl", "-q")
    assert result.code == 3 and result.out.splitlines()[:2] == [
        "2 reports, 2 runs: 6 targets",
        "NEEDS A LOOK: 2 failed",
    ]


def test_report_with_a_lost_resumed_report_needs_a_look(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The second way out: --lost reads without it, warns, and the verdict says what is missing."""
    os.remove("k/one.jsonl")
    result = run(capsys, "report", "k/two.jsonl", "--lost", "one.jsonl", "--outcome", "submitted")
    assert result.code == 3
    note = "k/two.jsonl resumes one.jsonl, left out (--lost): the runs in it are not read"
    assert result.out.splitlines()[1] == f"NEEDS A LOOK: 2 of 6 targets have no line; {note}"
    assert result.err == f"orchestrator: warning: {note}\n"


def test_rollback_with_a_lost_resumed_report_says_so_in_the_plan(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rollback without a lost report warns, and its plan says the proxies the lost runs changed are not in it."""
    os.remove("k/one.jsonl")
    result = run(capsys, "rollback", "k/two.jsonl", "--plan", "plans/wave1.yaml", "--out", "rb.yaml", "--lost",
                 "k/one.jsonl")  # fmt: skip
    assert result.code == 0 and "orchestrator: warning: k/two.jsonl resumes one.jsonl, left out (--lost)" in result.err
    assert "the proxies they changed are NOT in this plan" in Path("rb.yaml").read_text()
    assert {t.proxy_id for t in load_plan("rb.yaml").targets} == {P3}


def test_report_of_a_killed_run_fails_the_cron_check(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`report -q --format json LAST >/dev/null || page-someone` pages for a run killed after 2 of 6 targets,
    though both were submitted; the table says why."""
    Path("killed.jsonl").write_text(
        ReportBuilder("abc12345-0000").target(P1, "submitted").target(P2, "submitted").text()
    )
    assert run(capsys, "report", "-q", "--format", "json", "killed.jsonl").code == 3
    result = run(capsys, "report", "killed.jsonl")
    assert result.out.splitlines()[1] == (
        "NEEDS A LOOK: run abc12345 has no run_finished line (killed, or still running); 4 of 6 targets have no line"
    )


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"", "is not a report: it is empty"),
     (PLAN_TEXT.encode(), "is not a report: no line of it is an orchestrator report line (line 1: not JSON")],
    ids=["empty", "a plan"],
)  # fmt: skip
@pytest.mark.parametrize("command", ["report", "rollback"])
def test_a_file_without_a_run_is_exit_2_naming_it(
    workdir: Path, capsys: pytest.CaptureFixture[str], command: str, content: bytes, why: str
) -> None:
    """An empty file, or the plan given by mistake, is a usage error naming it, not "nothing to report"."""
    Path("given.jsonl").write_bytes(content)
    extra = ("--plan", "plans/wave1.yaml", "--out", "rb.yaml") if command == "rollback" else ()
    result = run(capsys, command, "given.jsonl", *extra)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith(f"orchestrator: error: given.jsonl {why}")


# --- rollback -----------------------------------------------------------------------------------------------------
def test_rollback_writes_the_inverse_plan(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`rollback` writes a plan putting every changed proxy back, and says to preview it."""
    result = run(capsys, "rollback", "two.jsonl", "--plan", "plans/wave1.yaml", "--out", "rollback.yaml")
    assert result.code == 0
    plan = load_plan("rollback.yaml")
    assert plan.name == "wave1-rollback"
    assert {(t.proxy_id, t.mode) for t in plan.targets} == {(P1, "session"), (P3, "session"), (P4, "eventual")}
    assert "rollback plan written to rollback.yaml; review it, then: orchestrator preview rollback.yaml" in result.err


def test_rollback_to_stdout(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--out - prints the plan on stdout."""
    result = run(capsys, "rollback", "one.jsonl", "--plan", "plans/wave1.yaml", "--out", "-", "-q")
    assert result.code == 0 and result.out.startswith("# Rollback plan: 2 proxies")


def test_rollback_refuses_to_overwrite(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing --out is kept unless --force."""
    Path("rollback.yaml").write_text("keep\n")
    result = run(capsys, "rollback", "one.jsonl", "--plan", "plans/wave1.yaml", "--out", "rollback.yaml")
    assert result.code == 2 and Path("rollback.yaml").read_text() == "keep\n"


def test_rollback_of_nothing_changed_writes_nothing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reports in which nothing changed give no file, exit 0 and a note."""
    Path("none.jsonl").write_text(ReportBuilder("r").target(P1, "failed").finished(at=1.0).text())
    result = run(capsys, "rollback", "none.jsonl", "--plan", "plans/wave1.yaml", "--out", "rb.yaml")
    assert result.code == 0 and not Path("rb.yaml").exists() and "nothing to roll back" in result.err


def test_rollback_with_an_invalid_plan_is_exit_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A --plan that does not validate is refused with its located errors."""
    Path("plans/bad.yaml").write_text("version: 2\n")
    result = run(capsys, "rollback", "one.jsonl", "--plan", "plans/bad.yaml", "--out", "rb.yaml")
    assert result.code == 2 and "plans/bad.yaml:1:" in result.err and not Path("rb.yaml").exists()


# --- init ---------------------------------------------------------------------------------------------------------
def test_init_writes_a_valid_starter_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`init` writes plan.yaml, valid as it is, and says what to do next."""
    monkeypatch.chdir(tmp_path)
    result = run(capsys, "init")
    assert result.code == 0 and load_plan("plan.yaml").targets[0].instance_id == EXAMPLE_INSTANCE_ID
    assert "starter plan written to plan.yaml; edit its IDs, then: orchestrator validate plan.yaml" in result.err


def test_init_never_overwrites_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing file is refused, exit 2, untouched; --force replaces it."""
    monkeypatch.chdir(tmp_path)
    Path("mine.yaml").write_text("my plan\n")
    result = run(capsys, "init", "--out", "mine.yaml")
    assert (
        result.code == 2
        and result.err == "orchestrator: error: --out: mine.yaml exists; pass --force to overwrite it\n"
    )
    assert Path("mine.yaml").read_text() == "my plan\n"
    assert run(capsys, "init", "--out", "mine.yaml", "--force").code == 0 and load_plan("mine.yaml").targets


def test_init_to_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`init --out -` prints the plan and writes no file."""
    monkeypatch.chdir(tmp_path)
    result = run(capsys, "init", "--out", "-")
    assert result.out.startswith("# An orchestrator plan") and result.err == "" and os.listdir(tmp_path) == []


def test_init_into_a_missing_directory_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that cannot be written is a one-line usage error."""
    result = run(capsys, "init", "--out", str(tmp_path / "nowhere" / "plan.yaml"))
    assert result.code == 2 and "--out: cannot write" in result.err and "No such file or directory" in result.err


# --- plan from-csv ------------------------------------------------------------------------------------------------
CSV = f"Instance ID,Proxy ID,Mode\r\n{I1},{P1},Global\r\n{I2},all,eventual\r\n"


def test_from_csv_writes_a_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plan from-csv` turns the CSV into a plan file that validates."""
    monkeypatch.chdir(tmp_path)
    Path("fleet.csv").write_bytes(b"\xef\xbb\xbf" + CSV.encode())
    result = run(capsys, "plan", "from-csv", "fleet.csv", "--region", "cn-north-4", "--project-id", PROJECT,
                 "--out", "fleet.yaml")  # fmt: skip
    assert result.code == 0 and "plan written to fleet.yaml; next: orchestrator validate fleet.yaml" in result.err
    plan = load_plan("fleet.yaml")
    assert [(t.instance_id, t.proxy_id, t.mode) for t in plan.targets] == [(I1, P1, "global"), (I2, "all", "eventual")]
    assert plan.name == "fleet"


def test_from_csv_reads_stdin_and_prints_the_plan(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plan from-csv -` reads the CSV from stdin and prints the plan on stdout."""
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(CSV.encode())))
    result = run(capsys, "plan", "from-csv", "-", "--endpoint", "http://127.0.0.1:8443", "--project-id", PROJECT,
                 "--name", "fleet")  # fmt: skip
    assert result.code == 0 and result.err == ""
    assert 'endpoint: "http://127.0.0.1:8443"' in result.out and 'name: "fleet"' in result.out
    assert "# Plan of 2 rows of <stdin>" in result.out


def test_from_csv_errors_name_the_file_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad rows are exit 2 with one line per problem naming the CSV, the line and the column."""
    path = tmp_path / "fleet.csv"
    path.write_text(f"instance_id,proxy_id,mode\n{I1},{P1},fast\n")
    result = run(capsys, "plan", "from-csv", str(path), "--region", "cn-north-4", "--project-id", PROJECT)
    assert result.code == 2 and result.out == ""
    assert result.err == (
        f"orchestrator: error: {path}:2:3: mode: invalid mode 'fast'; allowed: session, global, eventual\n"
    )


def test_from_csv_refuses_text_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CSV saved in a legacy encoding is refused with the line and how to fix it."""
    path = tmp_path / "fleet.csv"
    path.write_bytes(b"instance_id,proxy_id,mode\nd\xe9j\xe0,x,y\n")
    result = run(capsys, "plan", "from-csv", str(path), "--region", "cn-north-4", "--project-id", PROJECT)
    assert result.code == 2 and f"{path}:2: not UTF-8 text; save the CSV as UTF-8" in result.err


def test_from_csv_needs_a_region_or_an_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --region or --endpoint argparse refuses the command (exit 2)."""
    parser, _, _ = parser_and_handlers()
    with pytest.raises(SystemExit) as caught:
        parser.parse_args(["plan", "from-csv", "f.csv", "--project-id", PROJECT])
    assert caught.value.code == 2 and "one of the arguments --region --endpoint is required" in capsys.readouterr().err


def test_the_next_command_is_quoted_for_the_shell(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`init --out "my plans/wave 1.yaml"` suggests a validate command a shell reads back as meant."""
    import shlex

    Path("my plans").mkdir()
    result = run(capsys, "init", "--out", "my plans/wave 1.yaml")
    assert result.code == 0
    suggested = result.err.strip().split("then: ", 1)[1]
    assert shlex.split(suggested) == ["orchestrator", "validate", "my plans/wave 1.yaml"]
