"""The plan's safety sections (issue 4): gate, window and stop are read, defaulted and checked with located errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchestrator.errors import PlanError
from orchestrator.plan import (
    GateSettings,
    Percent,
    StopSettings,
    Window,
    parse_max_failures,
    parse_plan,
    parse_time,
)

PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"
INSTANCE = "d512257ecca04d96a0f3a9021018a385in07"
PROXY = "7bf4a8bbb4f4fb58233a242ee13603bpo01"
HEAD = f"""\
version: 1
region: cn-north-4
project_id: {PROJECT}
defaults:
  mode: session
targets:
  - instance_id: {INSTANCE}
    proxy_id: {PROXY}
"""  # 8 lines: the sections under test start on line 9
PLUS_ONE = timezone(timedelta(hours=1))


def issues(extra: str) -> list[str]:
    """The lines of the PlanError raised for HEAD + extra (fails the test if the plan is valid)."""
    with pytest.raises(PlanError) as caught:
        parse_plan(HEAD + extra, path="p.yaml")
    return str(caught.value).splitlines()


# --- defaults and valid sections ---------------------------------------------------------------------------
def test_sections_default_to_a_day_long_gate_no_window_and_no_budget() -> None:
    """A plan without gate, window or stop gets a 24 h preview lifetime, no window and no failure budget."""
    plan = parse_plan(HEAD, path="p.yaml")
    assert (plan.gate, plan.window, plan.stop) == (GateSettings(86400.0), None, None)


def test_all_three_sections_are_read() -> None:
    """gate.max_age, window times with offsets and cutoff, and a percent budget with min_sample are converted."""
    plan = parse_plan(
        HEAD
        + "gate: {max_age: 2h}\n"
        + "window:\n  not_before: 2026-12-03T01:00:00+01:00\n  not_after: '2026-12-03T04:00:00Z'\n  cutoff: 30m\n"
        + "stop: {max_failures: 5%, min_sample: 20}\n",
        path="p.yaml",
    )
    assert plan.gate == GateSettings(7200.0)
    assert plan.window == Window(
        datetime(2026, 12, 3, 1, 0, tzinfo=PLUS_ONE), datetime(2026, 12, 3, 4, 0, tzinfo=UTC), 1800.0
    )
    assert plan.window.last_start == datetime(2026, 12, 3, 3, 30, tzinfo=UTC)
    assert plan.stop == StopSettings(Percent(5.0), 20)


def test_unquoted_and_quoted_times_give_the_same_window() -> None:
    """A time written unquoted (a YAML timestamp) and the same time quoted load as the same aware datetime."""
    unquoted = parse_plan(
        HEAD + "window: {not_before: 2026-12-03T00:00:00Z, not_after: 2026-12-03T01:00:00Z}\n", path="p"
    )
    quoted = parse_plan(
        HEAD + "window: {not_before: '2026-12-03T00:00:00Z', not_after: \"2026-12-03T01:00:00Z\"}\n", path="p"
    )
    assert unquoted.window == quoted.window
    assert unquoted.window is not None and unquoted.window.not_before.tzinfo is not None


def test_an_absolute_budget_without_min_sample_is_read() -> None:
    """`max_failures: 3` is an absolute budget with min_sample 0."""
    plan = parse_plan(HEAD + "stop:\n  max_failures: 3\n", path="p.yaml")
    assert plan.stop == StopSettings(3, 0)


# --- window errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("quote", ["", "'"])
def test_a_time_without_offset_says_the_offset_is_required(quote: str) -> None:
    """A time without Z or +HH:MM is refused, quoted or not, with a message saying the offset is required."""
    text = f"window:\n  not_before: {quote}2026-12-03T01:00:00{quote}\n  not_after: 2026-12-03T02:00:00Z\n"
    assert issues(text) == [
        "p.yaml:10:15: window.not_before: the time '2026-12-03T01:00:00' has no offset; the offset is required: "
        "add Z for UTC or +HH:MM (such as 2026-12-03T01:00:00+01:00)"
    ]


def test_a_date_alone_is_not_a_time() -> None:
    """An unquoted date (which YAML reads as a date) is refused as a date without a time."""
    lines = issues("window:\n  not_before: 2026-12-03\n  not_after: 2026-12-04T00:00:00Z\n")
    assert lines == [
        "p.yaml:10:15: window.not_before: '2026-12-03' is a date without a time; allowed: an RFC 3339 time "
        "with an offset, such as 2026-12-03T01:00:00+01:00 or 2026-12-03T00:00:00Z"
    ]


def test_yaml_leniencies_beyond_rfc_3339_are_refused() -> None:
    """A timestamp PyYAML accepts but RFC 3339 does not (one-digit hour, `+1` offset) is refused."""
    lines = issues("window:\n  not_before: 2026-12-03 1:00:00 +1\n  not_after: 2026-12-04T00:00:00Z\n")
    assert lines == [
        "p.yaml:10:15: window.not_before: invalid time '2026-12-03 1:00:00 +1'; allowed: an RFC 3339 time "
        "with an offset, such as 2026-12-03T01:00:00+01:00 or 2026-12-03T00:00:00Z"
    ]


def test_an_impossible_unquoted_date_says_why() -> None:
    """An unquoted timestamp with month 13 names the bad field instead of asking to quote it."""
    lines = issues("window:\n  not_before: 2026-13-03T00:00:00Z\n  not_after: 2026-12-04T00:00:00Z\n")
    assert lines == ["p.yaml:10:15: window.not_before: invalid time '2026-13-03T00:00:00Z': month must be in 1..12"]


def test_an_offset_out_of_range_is_refused() -> None:
    """An offset of +24:00 is not a valid offset."""
    lines = issues("window:\n  not_before: 2026-12-03T00:00:00Z\n  not_after: '2026-12-04T00:00:00+24:00'\n")
    assert lines == [
        "p.yaml:11:14: window.not_after: invalid time '2026-12-04T00:00:00+24:00': offset +24:00 out of range"
    ]


def test_not_after_must_be_after_not_before() -> None:
    """A window whose end is not after its start is refused at not_after, comparing instants across offsets."""
    lines = issues("window:\n  not_before: 2026-12-03T01:00:00+01:00\n  not_after: 2026-12-03T00:00:00Z\n")
    assert lines == [
        "p.yaml:11:14: window.not_after: not_after 2026-12-03T00:00:00Z is not after not_before "
        "2026-12-03T01:00:00+01:00; allowed: a time after not_before"
    ]


def test_a_cutoff_as_long_as_the_window_is_refused() -> None:
    """A cutoff that leaves no time to start anything is refused at cutoff."""
    lines = issues("window:\n  not_before: 2026-12-03T00:00:00Z\n  not_after: 2026-12-03T01:00:00Z\n  cutoff: 1h\n")
    assert lines == [
        "p.yaml:12:11: window.cutoff: cutoff 3600s is not shorter than the window (3600s from not_before to "
        "not_after): no target could ever start; allowed: a duration below the window's length"
    ]


def test_window_keys_are_required_and_unknown_ones_suggested() -> None:
    """A window without not_before is located at the mapping; a misspelt key gets a did-you-mean."""
    lines = issues("window:\n  not_after: 2026-12-03T01:00:00Z\n  cuttoff: 5m\n")
    assert lines == [
        "p.yaml:10:3: window.not_before: missing required key 'not_before'; expected an RFC 3339 time with an "
        "offset, such as 2026-12-03T01:00:00+01:00 or 2026-12-03T00:00:00Z",
        "p.yaml:11:3: window.cuttoff: unknown key 'cuttoff' (did you mean 'cutoff'?)",
    ]


def test_a_window_key_at_the_top_level_points_to_its_section() -> None:
    """`cutoff` and `max_failures` written at the top level suggest window.cutoff and stop.max_failures."""
    assert issues("cutoff: 5m\nmax_failures: 3\n") == [
        "p.yaml:9:1: cutoff: unknown key 'cutoff' (did you mean 'window.cutoff'?)",
        "p.yaml:10:1: max_failures: unknown key 'max_failures' (did you mean 'stop.max_failures'?)",
    ]


def test_an_empty_section_is_an_error_not_a_default() -> None:
    """`window:` and `stop:` with no value are errors, not a silently absent window or budget."""
    assert issues("window:\nstop:\n") == [
        "p.yaml:9:8: window: expected a mapping with the keys not_before, not_after, cutoff, got an empty value",
        "p.yaml:10:6: stop: expected a mapping with the keys max_failures, min_sample, got an empty value",
    ]


def test_a_boolean_or_number_is_not_a_time() -> None:
    """An unquoted `on` and a bare number are refused as times, saying what YAML read."""
    lines = issues("window:\n  not_before: on\n  not_after: 20261203\n")
    assert lines == [
        "p.yaml:10:15: window.not_before: expected an RFC 3339 time with an offset, such as "
        "2026-12-03T01:00:00+01:00 or 2026-12-03T00:00:00Z, got the boolean true (unquoted `on`)",
        "p.yaml:11:14: window.not_after: expected an RFC 3339 time with an offset, such as "
        "2026-12-03T01:00:00+01:00 or 2026-12-03T00:00:00Z, got the number 20261203",
    ]


# --- stop and gate errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "max_failures must be at least 1, got 0; allowed: an integer of 1 or more, or a percent of the "
              "targets above 0 and at most 100 ('5%')"),
        ("0%", "the percent must be above 0 and at most 100, got '0%'"),
        ("101%", "the percent must be above 0 and at most 100, got '101%'"),
        ("'3'", "invalid max_failures '3'; allowed: an integer of 1 or more, or a percent of the targets above 0 "
                "and at most 100 ('5%')"),
        ("true", "expected an integer of 1 or more, or a percent of the targets above 0 and at most 100 ('5%'), "
                 "got the boolean true"),
    ],
)  # fmt: skip
def test_bad_max_failures_are_located(value: str, message: str) -> None:
    """max_failures must be an integer >= 1 or a percent in (0, 100]; anything else is one located issue."""
    assert issues(f"stop:\n  max_failures: {value}\n") == [f"p.yaml:10:17: stop.max_failures: {message}"]


def test_min_sample_must_not_be_negative() -> None:
    """A negative min_sample is refused."""
    assert issues("stop:\n  max_failures: 5%\n  min_sample: -1\n") == [
        "p.yaml:11:15: stop.min_sample: expected an integer of 0 or more, got the number -1"
    ]


def test_min_sample_with_an_absolute_budget_is_refused() -> None:
    """min_sample only means something for a percent budget: with an absolute one it is an error."""
    assert issues("stop:\n  max_failures: 3\n  min_sample: 10\n") == [
        "p.yaml:11:15: stop.min_sample: min_sample applies to a percent max_failures (such as '5%') only; an "
        "absolute max_failures holds from the first target: remove min_sample or write max_failures as a percent"
    ]


def test_stop_needs_max_failures() -> None:
    """A stop section without max_failures is refused at the mapping."""
    assert issues("stop:\n  min_sample: 3\n") == [
        "p.yaml:10:3: stop.max_failures: missing required key 'max_failures'; expected an integer of 1 or more, "
        "or a percent of the targets above 0 and at most 100 ('5%')"
    ]


def test_gate_max_age_must_be_positive() -> None:
    """A preview that is valid for 0 seconds is refused."""
    assert issues("gate:\n  max_age: 0\n") == ["p.yaml:10:12: gate.max_age: the duration must be above 0s, got 0"]


# --- the parsers on their own ------------------------------------------------------------------------------
def test_parse_time_keeps_fractions_and_negative_offsets() -> None:
    """Fractions beyond microseconds are cut, `t`/`z` in lower case and negative offsets are read."""
    assert parse_time("2026-12-03t04:00:00.123456789-05:30") == datetime(
        2026, 12, 3, 4, 0, 0, 123456, tzinfo=timezone(-timedelta(hours=5, minutes=30))
    )
    assert parse_time("2026-12-03 04:00:00z") == datetime(2026, 12, 3, 4, tzinfo=UTC)


def test_parse_time_accepts_aware_datetimes_only() -> None:
    """An aware datetime passes through; a naive one is refused for lack of an offset."""
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_time(aware) is aware
    with pytest.raises(ValueError, match="the offset is required"):
        parse_time(datetime(2026, 1, 1))  # naive on purpose


def test_parse_max_failures_reads_fractional_percents() -> None:
    """ "2.5%" is a Percent of 2.5 and prints back as written."""
    assert parse_max_failures("2.5%") == Percent(2.5)
    assert str(Percent(2.5)) == "2.5%"
