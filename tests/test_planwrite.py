"""Written plans: retry, rollback, the starter plan and plans from CSV are valid plans that say what they should."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from fakes import PROJECT, instance_id, proxy_id
from reportfixtures import I1, I2, I3, P1, P2, P3, P4, P5, P6, ReportBuilder, first_run, second_run, wave_plan

from orchestrator.errors import PlanError, UsageError
from orchestrator.journal import Journal, parse_journal
from orchestrator.plan import Percent, Plan, load_plan, parse_duration, parse_plan, parse_rate
from orchestrator.plancheck import _KEYS
from orchestrator.plancsv import MAX_ISSUES
from orchestrator.planwrite import (
    EXAMPLE_INSTANCE_ID,
    EXAMPLE_PROJECT_ID,
    EXAMPLE_PROXY_ID,
    EmptyPlan,
    PlanTarget,
    Settings,
    check_same_plan,
    duration_text,
    init_plan,
    plan_from_csv,
    quote,
    render_plan,
    retry_plan,
    rollback_plan,
)
from orchestrator.summary import make_filters

OTHER_PROJECT = "4b5c6d7e8f9041a2b3c4d5e6f7a8b9c0"


def journal(*reports: ReportBuilder) -> Journal:
    return parse_journal([(f"r{n}.jsonl", r.data()) for n, r in enumerate(reports, start=1)])


def written(text: str, tmp_path: Path, name: str = "written.yaml") -> Plan:
    """Load a written plan from a file, exactly as `orchestrator validate` would."""
    path = tmp_path / name
    path.write_text(text)
    return load_plan(path)


def goals(plan: Plan) -> dict[tuple[str, str, str], str]:
    return {t.key: t.mode for t in plan.targets}


# --- retry --------------------------------------------------------------------------------------------------------
def test_a_retry_plan_holds_the_targets_that_did_not_succeed(tmp_path: Path) -> None:
    """failed, unknown and not_started targets are retried with the plan's goals; done ones are not."""
    plan = written(retry_plan(journal(first_run()), wave_plan()), tmp_path)
    assert goals(plan) == {
        (PROJECT, I1, P3): "global",
        (PROJECT, I2, P4): "session",
        (PROJECT, I2, P5): "global",
        (PROJECT, I3, "all"): "eventual",
    }


def test_a_retry_plan_keeps_every_setting_of_the_original(tmp_path: Path) -> None:
    """Region, project, limits, retry, jobs, gate, window and stop are the original plan's; the name says retry."""
    original = wave_plan()
    plan = written(retry_plan(journal(first_run()), original), tmp_path)
    assert plan.name == "wave1-retry"
    assert (plan.region, plan.endpoint, plan.project_id) == (original.region, None, PROJECT)
    assert (plan.limits, plan.retry, plan.jobs, plan.gate) == (
        original.limits,
        original.retry,
        original.jobs,
        original.gate,
    )
    assert plan.window == original.window and plan.stop == original.stop
    assert plan.stop is not None and plan.stop.max_failures == Percent(5.0) and plan.stop.min_sample == 20


def test_a_retry_plan_of_resumed_runs_follows_the_latest_outcomes(tmp_path: Path) -> None:
    """After a resumed run, only its failures are retried, a proxy found under a whole instance by name."""
    plan = written(retry_plan(journal(first_run(), second_run()), wave_plan()), tmp_path)
    assert goals(plan) == {(PROJECT, I2, P5): "global", (PROJECT, I3, P6): "eventual"}


def test_targets_no_report_mentions_are_retried(tmp_path: Path) -> None:
    """A run killed before reaching some targets leaves them in the retry plan, marked never reached."""
    killed = ReportBuilder("killed").target(P1, "submitted").target(P2, "unchanged")
    text = retry_plan(journal(killed), wave_plan())
    plan = written(text, tmp_path)
    assert set(goals(plan)) == {(PROJECT, I1, P3), (PROJECT, I2, P4), (PROJECT, I2, P5), (PROJECT, I3, "all")}
    assert text.count("# never reached: no report line") == 4


def test_a_retry_plan_can_be_limited_by_the_report_filters(tmp_path: Path) -> None:
    """`only` keeps the retried targets it allows; never-reached targets count as not_started."""
    text = retry_plan(journal(first_run()), wave_plan(), only=make_filters(["failed", "unknown"]))
    assert set(goals(written(text, tmp_path))) == {(PROJECT, I1, P3), (PROJECT, I2, P4)}
    text = retry_plan(journal(first_run()), wave_plan(), only=make_filters([], [I3]))
    assert set(goals(written(text, tmp_path))) == {(PROJECT, I3, "all")}


def test_a_retry_plan_says_why_each_target_is_in_it() -> None:
    """Each retried target has a comment with its outcome, error and the report line."""
    text = retry_plan(journal(first_run()), wave_plan(), sources=["reports/one.jsonl"])
    assert "# failed: DBS.200019: instance busy (r1.jsonl:4)" in text
    assert "# From the reports: reports/one.jsonl" in text


def test_nothing_to_retry_is_an_empty_plan_error() -> None:
    """When every target of the plan succeeded there is no plan to write."""
    done = ReportBuilder("done")
    for instance, proxy in ((I1, P1), (I1, P2), (I1, P3), (I2, P4), (I2, P5), (I3, P6)):
        done.target(proxy, "submitted", instance=instance)
    with pytest.raises(EmptyPlan, match="nothing to retry"):
        retry_plan(journal(done), wave_plan())


def test_a_target_outside_the_plan_is_left_out_with_a_note(tmp_path: Path) -> None:
    """A failed target the plan does not name is not retried; a comment says so."""
    stray = ReportBuilder("r").target(proxy_id(9), "failed", instance=instance_id(9), error_code="E")
    text = retry_plan(journal(stray), wave_plan())
    assert f"# left out {instance_id(9)}/{proxy_id(9)}: failed, but not a target of plans/wave1.yaml" in text
    assert (PROJECT, instance_id(9), proxy_id(9)) not in goals(written(text, tmp_path))


def test_reports_of_another_version_of_the_plan_are_refused() -> None:
    """A plan whose digest no run recorded is refused in one line naming the plan the run used."""
    other = ReportBuilder("r", digest="f" * 64).target(P1, "failed")
    with pytest.raises(UsageError) as caught:
        check_same_plan(journal(other), wave_plan())
    assert str(caught.value).startswith("--plan plans/wave1.yaml is not the plan these reports ran (plans/wave1.yaml,")
    check_same_plan(journal(first_run()), wave_plan())  # the same plan: accepted


# --- rollback -----------------------------------------------------------------------------------------------------
def test_a_rollback_plan_returns_changed_proxies_to_their_mode_before(tmp_path: Path) -> None:
    """submitted proxies go back to mode_before; unchanged, failed and not started ones are not in it."""
    plan = written(rollback_plan(journal(first_run()), wave_plan()), tmp_path)
    assert goals(plan) == {(PROJECT, I1, P1): "session", (PROJECT, I2, P4): "eventual"}
    assert plan.name == "wave1-rollback" and plan.limits == wave_plan().limits


def test_an_unknown_outcome_is_rolled_back_and_marked_as_maybe() -> None:
    """A change whose answer was lost may have been applied: it is in the rollback, its comment says so."""
    text = rollback_plan(journal(first_run()), wave_plan())
    assert "# outcome unknown, may have been changed eventual -> session (r1.jsonl:5)" in text
    assert "# changed session -> global (r1.jsonl:2)" in text


def test_a_rollback_of_resumed_runs_uses_the_mode_before_the_first_change(tmp_path: Path) -> None:
    """An unknown change found at its goal by the resumed run goes back to the mode seen before the first try."""
    plan = written(rollback_plan(journal(first_run(), second_run()), wave_plan()), tmp_path)
    assert goals(plan) == {
        (PROJECT, I1, P1): "session",
        (PROJECT, I1, P3): "session",
        (PROJECT, I2, P4): "eventual",
    }


def test_plans_of_reports_read_without_a_lost_one_say_so(tmp_path: Path) -> None:
    """A resumed report left out (--lost) is named in the header of the rollback and the retry plan, with what
    that means for each."""
    note = "r1.jsonl resumes one.jsonl, left out (--lost): the runs in it are not read"
    without = parse_journal([("r1.jsonl", second_run().data())], left_out=[note])
    rollback = rollback_plan(without, wave_plan())
    assert f"# {note}; the proxies they changed are NOT in this plan" in rollback
    assert goals(written(rollback, tmp_path)) == {(PROJECT, I1, P3): "session"}
    retry = retry_plan(without, wave_plan())
    assert f"# {note}; the targets only they settled count as never reached" in retry


def test_completed_and_verified_count_as_changed(tmp_path: Path) -> None:
    """Outcomes of later versions that mean the change happened are rolled back too."""
    report = (
        ReportBuilder("r")
        .target(P1, "completed", before="eventual")
        .target(P2, "verified", before="global", goal="session")
    )
    plan = written(rollback_plan(journal(report), wave_plan()), tmp_path)
    assert goals(plan) == {(PROJECT, I1, P1): "eventual", (PROJECT, I1, P2): "global"}


def test_a_changed_proxy_without_mode_before_is_left_out_and_named() -> None:
    """A proxy whose mode before is null cannot be rolled back: a comment names it."""
    report = ReportBuilder("r").target(P1, "submitted", before=None).target(P2, "submitted", before="eventual")
    text = rollback_plan(journal(report), wave_plan())
    assert f"# left out {I1}/{P1}: submitted but its mode before is unknown (null)" in text
    assert P1 not in text.split("targets:")[1]


def test_a_rollback_keeps_a_target_project_that_differs() -> None:
    """A proxy of another project than the plan's default carries its own project_id."""
    report = ReportBuilder("r").target(P1, "submitted", project=OTHER_PROJECT)
    plan = parse_plan(rollback_plan(journal(report), wave_plan()), path="rollback.yaml")
    assert plan.targets[0].project_id == OTHER_PROJECT


def test_nothing_changed_is_an_empty_plan_error() -> None:
    """Reports in which nothing was changed give no rollback plan."""
    report = ReportBuilder("r").target(P1, "failed").target(P2, "unchanged").target(P3, "drifted")
    with pytest.raises(EmptyPlan, match="nothing to roll back"):
        rollback_plan(journal(report), wave_plan())


def test_report_text_cannot_escape_its_comment(tmp_path: Path) -> None:
    """An error message with line breaks stays one comment line and cannot add keys to the plan."""
    hostile = "boom\nmode: eventual\r\n  - instance_id: x\x1b[2J"
    report = ReportBuilder("r").target(P1, "failed", error_code="E", error_msg=hostile)
    text = retry_plan(journal(report), wave_plan())
    comment = next(line for line in text.splitlines() if "boom" in line)
    assert comment.strip().startswith("# failed: E: boom\\nmode: eventual\\r\\n")
    assert "\x1b" not in text
    assert goals(written(text, tmp_path))[(PROJECT, I1, P1)] == "global"


# --- rendering ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["on", "off", "yes", "No", "y", "0123", "0x1F", "1e3", "1_000", "12:30", "2026-12-07",
                                  "null", "~", "true", "- item", "#x", "a: b", "'q'", '"d"', "é", "tab\there"])  # fmt: skip
def test_quoted_strings_read_back_as_the_same_text(text: str) -> None:
    """A quoted scalar is read as exactly its text by YAML 1.1 (PyYAML), never as a bool, number or date."""
    assert yaml.safe_load(f"key: {quote(text)}") == {"key": text}


@pytest.mark.parametrize("seconds", [0.0, 0.25, 0.5, 1.0, 1.5, 30.0, 90.0, 600.0, 5400.0, 86400.0, 0.0004, 123.456])
def test_durations_are_written_so_they_read_back_the_same(seconds: float) -> None:
    """Every duration written reads back, through the plan's parser, as the same number of seconds."""
    assert parse_duration(duration_text(seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize("rate", ["10/s", "600/min", "3/h", "2.5", "0.5", "7"])
def test_rates_are_written_so_they_read_back_the_same(rate: str, tmp_path: Path) -> None:
    """A plan's rate survives being written into a retry plan."""
    original = parse_plan(f"version: 1\nregion: cn-north-4\nproject_id: {PROJECT}\nlimits: {{rate: {rate!r}}}\n"
                          f"defaults: {{mode: session}}\ntargets: [{{instance_id: {I1}, proxy_id: {P1}}}]\n",
                          path="p.yaml")  # fmt: skip
    text = retry_plan(journal(ReportBuilder("r", digest=original.digest).target(P1, "failed")), original)
    assert written(text, tmp_path).limits.rate == original.limits.rate == parse_rate(rate)


def test_an_endpoint_plan_keeps_its_endpoint(tmp_path: Path) -> None:
    """A plan with an endpoint and no region is written with that endpoint."""
    settings = Settings(name="x", endpoint="http://127.0.0.1:8443", project_id=PROJECT)
    plan = written(render_plan(settings, [PlanTarget(PROJECT, I1, P1, "global")]), tmp_path)
    assert plan.endpoint == "http://127.0.0.1:8443" and plan.region is None


def test_a_retry_plan_keeps_the_iam_endpoint(tmp_path: Path) -> None:
    """Where the original plan logs in (`iam_endpoint`) is where its retry plan logs in."""
    original = parse_plan(
        f"version: 1\nregion: cn-north-4\niam_endpoint: https://iam.example.com\nproject_id: {PROJECT}\n"
        f"targets: [{{instance_id: {I1}, proxy_id: {P1}, mode: global}}]\n",
        path="p.yaml",
    )
    text = retry_plan(journal(ReportBuilder("r", digest=original.digest).target(P1, "failed")), original)
    assert written(text, tmp_path).iam_endpoint == "https://iam.example.com"


def test_a_long_plan_name_is_cut_to_stay_valid(tmp_path: Path) -> None:
    """A 64-character plan name still makes a valid name with the -rollback suffix."""
    original = parse_plan(
        f"version: 1\nname: {'n' * 64}\nregion: cn-north-4\nproject_id: {PROJECT}\n"
        f"targets: [{{instance_id: {I1}, proxy_id: {P1}, mode: global}}]\n",
        path="p.yaml",
    )
    plan = written(rollback_plan(journal(ReportBuilder("r").target(P1, "submitted")), original), tmp_path)
    assert plan.name == "n" * 55 + "-rollback"


# --- the starter plan ---------------------------------------------------------------------------------------------
def test_the_starter_plan_is_valid_as_it_is(tmp_path: Path) -> None:
    """`init` writes a plan that validates, with the API documentation's example IDs."""
    plan = written(init_plan(), tmp_path)
    assert plan.targets[0].key == (EXAMPLE_PROJECT_ID, EXAMPLE_INSTANCE_ID, EXAMPLE_PROXY_ID)
    assert plan.window is None and plan.stop is None


def test_the_starter_plan_explains_every_key() -> None:
    """Every key a plan may have appears in the starter plan, with a comment on its line."""
    text = init_plan()
    for section, keys in _KEYS.items():
        for key in keys:
            lines = [line for line in text.splitlines() if re.match(rf"\s*(#\s*)?(- )?{key}:", line)]
            assert lines, f"{section}.{key} is not in the starter plan"
            if section or key not in _KEYS:  # a leaf key, not the head of a section
                assert any("#" in line.lstrip("# ") for line in lines), f"{section}.{key} has no comment"


def test_the_starter_plans_commented_sections_are_valid_when_uncommented(tmp_path: Path) -> None:
    """Uncommenting the endpoint, window, stop and target project_id lines still gives a valid plan."""
    text = init_plan()
    text = re.sub(r"^# (endpoint|iam_endpoint|window|stop)", r"\1", text, flags=re.MULTILINE)
    text = re.sub(r"^#   (not_before|not_after|cutoff|max_failures|min_sample):", r"  \1:", text, flags=re.MULTILINE)
    text = text.replace("    # project_id:", "    project_id:")
    plan = written(text, tmp_path)
    assert plan.window is not None and plan.stop is not None and plan.endpoint is not None
    assert plan.iam_endpoint == "https://iam.cn-north-4.myhuaweicloud.com"


# --- from CSV -----------------------------------------------------------------------------------------------------
def from_csv(text: str, **options: str) -> Plan:
    arguments = {"project_id": PROJECT, "region": "cn-north-4", "file": "fleet.csv", **options}
    return parse_plan(plan_from_csv(text, **arguments), path="fleet.yaml")


def test_a_plain_csv_becomes_a_plan() -> None:
    """A header and rows of instance_id, proxy_id and mode become the targets, in order."""
    plan = from_csv(f"instance_id,proxy_id,mode\n{I1},{P1},global\n{I2},all,eventual\n")
    assert [(t.instance_id, t.proxy_id, t.mode, t.project_id) for t in plan.targets] == [
        (I1, P1, "global", PROJECT),
        (I2, "all", "eventual", PROJECT),
    ]
    assert plan.region == "cn-north-4" and plan.project_id == PROJECT


def test_all_and_modes_are_read_in_any_case() -> None:
    """A spreadsheet's `ALL` and `Global` mean `all` and `global`: the plan gets the lower-case spelling."""
    plan = from_csv(f"instance_id,proxy_id,mode\n{I1},ALL,Global\n{I2},All,EVENTUAL\n")
    assert [(t.proxy_id, t.mode) for t in plan.targets] == [("all", "global"), ("all", "eventual")]


def test_a_spreadsheet_export_is_read_as_it_comes() -> None:
    """BOM, CRLF, blank lines, spaces, column order, header case, extra columns and ';' are all fine."""
    text = (
        "\ufeff Mode ; Name ;Proxy-ID; INSTANCE ID ;Project_Id\r\n"
        "\r\n"
        f" Global ; db one ; {P1} ; {I1} ; \r\n"
        f"session;db two;{P2};{I1};{OTHER_PROJECT}\r\n"
    )
    plan = from_csv(text)
    assert [(t.instance_id, t.proxy_id, t.mode, t.project_id) for t in plan.targets] == [
        (I1, P1, "global", PROJECT),
        (I1, P2, "session", OTHER_PROJECT),
    ]


def test_csv_problems_are_listed_with_file_line_and_column_name() -> None:
    """Every bad cell is reported in one line: file, line, column number, column name and what is wrong."""
    text = (
        "instance_id,proxy_id,mode,project_id\n"
        f"{I1},{P1},global,\n"
        f"bad-instance,{P2},sometimes,\n"
        f"{I1},,global,\n"
        f"{I1},{P1},session,\n"
        f"{I2},{P3},global,{PROJECT}x\n"
        f"{I1},{P4},global,,surplus\n"
    )
    with pytest.raises(PlanError) as caught:
        from_csv(text)
    assert str(caught.value).splitlines() == [
        "fleet.csv:3:1: instance_id: invalid instance_id 'bad-instance'; allowed: 32 letters or digits followed by "
        "'in' and two digits (36 characters)",
        "fleet.csv:3:3: mode: invalid mode 'sometimes'; allowed: session, global, eventual",
        "fleet.csv:4:2: proxy_id: empty proxy_id",
        "fleet.csv:5:2: proxy_id: duplicate target: same project, instance and proxy as line 2; keep one",
        f"fleet.csv:6:4: project_id: invalid project_id '{PROJECT}x'; allowed: 32 letters or digits",
        "fleet.csv:7:1: 5 cells, but the header has 4 columns",
    ]


def test_a_missing_column_names_what_the_header_has() -> None:
    """A header without proxy_id says which column is missing and what the header holds."""
    with pytest.raises(PlanError) as caught:
        from_csv(f"instance,mode\n{I1},global\n")
    assert str(caught.value).splitlines() == [
        "fleet.csv:1:1: instance_id: missing column 'instance_id'; the header row has: 'instance', 'mode'",
        "fleet.csv:1:1: proxy_id: missing column 'proxy_id'; the header row has: 'instance', 'mode'",
    ]


def test_all_and_a_named_proxy_of_one_instance_are_ambiguous() -> None:
    """proxy_id all next to a named proxy of the same instance is refused, like in a plan."""
    with pytest.raises(PlanError, match=r"fleet.csv:3:2: proxy_id: ambiguous: 'all' and a named proxy"):
        from_csv(f"instance_id,proxy_id,mode\n{I1},all,global\n{I1},{P1},global\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "fleet.csv:1:1: the file is empty; expected a header row: instance_id,proxy_id,mode"),
        ("instance_id,proxy_id,mode\n\n", "fleet.csv:2:1: no rows after the header: a plan needs at least one target"),
        ('instance_id,proxy_id,mode\n"unterminated', "fleet.csv:2:1: not readable as CSV: unexpected end of data"),
        ("mode,mode,instance_id,proxy_id\n", "fleet.csv:1:2: mode: column 'mode' appears twice (columns 1 and 2); keep one"),
    ],
)  # fmt: skip
def test_an_unusable_csv_says_why_in_one_line(text: str, message: str) -> None:
    """An empty file, a header without rows, a broken quote and a doubled column are each one clear line."""
    with pytest.raises(PlanError) as caught:
        from_csv(text)
    assert str(caught.value) == message


def test_a_csv_with_thousands_of_bad_rows_reports_the_first_ones() -> None:
    """At most MAX_ISSUES problems are listed, then a line says how many more there are."""
    text = "instance_id,proxy_id,mode\n" + "".join(f"{I1},{P1},wrong\n" for _ in range(200))
    with pytest.raises(PlanError) as caught:
        from_csv(text)
    lines = str(caught.value).splitlines()
    assert len(lines) == MAX_ISSUES + 1 and lines[-1].endswith("... and 150 more problems, not shown")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"project_id": "short"}, "--project-id: invalid project_id 'short'; allowed: 32 letters or digits"),
        ({"region": "xx-nowhere-1"}, "--region: unknown region 'xx-nowhere-1'; known: "),
        ({"region": "cn-north-4", "name": "bad name"}, "--name: invalid name 'bad name'"),
    ],
)
def test_bad_arguments_are_usage_errors(options: dict[str, str], message: str) -> None:
    """A bad project, region or name is refused before the CSV is read, naming the option."""
    with pytest.raises(UsageError) as caught:
        from_csv(f"instance_id,proxy_id,mode\n{I1},{P1},global\n", **options)
    assert str(caught.value).startswith(message)


def test_a_csv_plan_may_name_an_endpoint_instead_of_a_region() -> None:
    """--endpoint instead of --region gives a plan with that endpoint."""
    text = plan_from_csv(f"instance_id,proxy_id,mode\n{I1},{P1},global\n", project_id=PROJECT,
                         endpoint="https://gaussdb.example.test")  # fmt: skip
    assert parse_plan(text, path="p.yaml").endpoint == "https://gaussdb.example.test"


def test_every_written_plan_is_a_valid_plan(tmp_path: Path) -> None:
    """Retry, rollback, starter and CSV plans all load with load_plan, each from its own file."""
    texts = {
        "retry": retry_plan(journal(first_run(), second_run()), wave_plan()),
        "rollback": rollback_plan(journal(first_run(), second_run()), wave_plan()),
        "init": init_plan(),
        "csv": plan_from_csv(
            f"instance_id,proxy_id,mode\n{I3},{P6},eventual\n", project_id=PROJECT, region="cn-north-4"
        ),
    }
    for name, text in texts.items():
        assert written(text, tmp_path, f"{name}.yaml").targets, name


def test_a_job_still_running_at_its_timeout_is_rolled_back_as_maybe(tmp_path: Path) -> None:
    """job_timeout (the job may still apply) is rolled back like unknown; job_failed is not."""
    report = ReportBuilder("r").target(P1, "job_timeout", before="eventual").target(P2, "job_failed")
    text = rollback_plan(journal(report), wave_plan())
    assert goals(written(text, tmp_path)) == {(PROJECT, I1, P1): "eventual"}
    assert "outcome unknown, may have been changed eventual -> global" in text
