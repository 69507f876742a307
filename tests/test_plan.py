"""The plan loader: a valid plan becomes a Plan; every problem of an invalid one is located and reported."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import ExitCode, PlanError, UsageError
from orchestrator.plan import (
    INSTANCE_ID_RE,
    PROJECT_ID_RE,
    PROXY_ID_RE,
    JobSettings,
    Limits,
    Plan,
    Rate,
    RetrySettings,
    Target,
    load_plan,
    parse_duration,
    parse_plan,
    parse_rate,
)

PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"
INSTANCE = "d512257ecca04d96a0f3a9021018a385in07"
PROXY = "7bf4a8bbb4f4fb58233a242ee13603bpo01"  # the contract's example: 35 characters
PLANS = Path(__file__).resolve().parent.parent / "plans"

HEAD = f"""\
version: 1
region: cn-north-4
project_id: {PROJECT}
defaults:
  mode: session
"""
ONE_TARGET = f"""\
targets:
  - instance_id: {INSTANCE}
    proxy_id: {PROXY}
"""
VALID = HEAD + ONE_TARGET


def issues(text: str | bytes, path: str = "p.yaml") -> list[str]:
    """The lines of the PlanError raised for `text` (fails the test if the plan is valid)."""
    with pytest.raises(PlanError) as caught:
        parse_plan(text, path=path)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.issues)
    return lines


def plan_with(extra: str) -> str:
    """HEAD + extra top-level YAML + one target."""
    return HEAD + textwrap.dedent(extra) + ONE_TARGET


# --- valid plans -----------------------------------------------------------------------------------------
def test_minimal_plan_gets_the_dataclass_defaults() -> None:
    """A minimal plan loads with the dataclass defaults, its file stem as name and the sha256 of its bytes."""
    plan = parse_plan(VALID, path="plans/minimal.yaml")
    assert plan == Plan(
        path="plans/minimal.yaml",
        name="minimal",
        digest=hashlib.sha256(VALID.encode()).hexdigest(),
        region="cn-north-4",
        endpoint=None,
        project_id=PROJECT,
        limits=Limits(),
        retry=RetrySettings(),
        jobs=JobSettings(),
        targets=(Target(PROJECT, INSTANCE, PROXY, "session"),),
    )
    assert plan.targets[0].line == 7


def test_every_key_is_read() -> None:
    """Every key of format version 1 is read and converted: rates, durations, endpoint, overrides."""
    other_project = "0123456789abcdefABCDEF0123456789"
    text = f"""\
version: 1
name: nightly-switch_2.0
region: ap-southeast-1
endpoint: https://gaussdbformysql.ap-southeast-1.myhuaweicloud.com/
project_id: {PROJECT}
limits:
  rate: 600/min
  concurrency: 20
  per_instance: 2
retry:
  attempts: 7
  base_delay: 250ms
  max_delay: 1m30s
  timeout: 10
jobs:
  poll_interval: 1.5s
  timeout: 1h
  visibility_grace: 0
defaults:
  mode: eventual
targets:
  - instance_id: {INSTANCE}
    proxy_id: all
  - instance_id: {"e" * 32}in01
    proxy_id: {"f" * 32}po02
    mode: global
    project_id: {other_project}
"""
    plan = parse_plan(text, path="x.yaml")
    assert plan.name == "nightly-switch_2.0"
    assert plan.endpoint == "https://gaussdbformysql.ap-southeast-1.myhuaweicloud.com"
    assert plan.limits == Limits(Rate(600, 60.0), 20, 2)
    assert plan.retry == RetrySettings(7, 0.25, 90.0, 10.0)
    assert plan.jobs == JobSettings(1.5, 3600.0, 0.0)
    assert plan.targets == (
        Target(PROJECT, INSTANCE, "all", "eventual"),
        Target(other_project, "e" * 32 + "in01", "f" * 32 + "po02", "global"),
    )
    assert [t.line for t in plan.targets] == [22, 24]


def test_targets_may_carry_their_own_project_and_mode_without_top_level_defaults() -> None:
    """Without a top-level project_id or defaults.mode, each target's own values are used."""
    text = f"""\
version: 1
endpoint: http://127.0.0.1:8080
targets:
  - {{instance_id: {INSTANCE}, proxy_id: {PROXY}, mode: global, project_id: {PROJECT}}}
"""
    plan = parse_plan(text, path="x.yaml")
    assert plan.project_id is None
    assert plan.region is None
    assert plan.targets == (Target(PROJECT, INSTANCE, PROXY, "global"),)


def test_an_unknown_region_is_allowed_with_an_endpoint() -> None:
    """A plausible but unknown region passes when an endpoint says where to go."""
    text = VALID.replace("region: cn-north-4", "region: eu-west-101\nendpoint: https://example.com")
    assert parse_plan(text, path="x.yaml").region == "eu-west-101"


def test_load_plan_reads_the_file_and_hashes_its_bytes(tmp_path: Path) -> None:
    """load_plan accepts a PathLike, keeps the path as given and hashes the exact bytes (BOM included)."""
    data = b"\xef\xbb\xbf" + VALID.replace("\n", "\r\n").encode()
    file = tmp_path / "canary.yaml"
    file.write_bytes(data)
    plan = load_plan(file)
    assert plan.path == str(file)
    assert plan.name == "canary"
    assert plan.digest == hashlib.sha256(data).hexdigest()
    assert plan.targets[0].mode == "session"


def test_text_and_bytes_give_the_same_plan() -> None:
    """parse_plan reads str and UTF-8 bytes alike."""
    assert parse_plan(VALID, path="a.yaml") == parse_plan(VALID.encode(), path="a.yaml")


def test_aliases_within_the_limit_are_fine() -> None:
    """An anchor reused a few times is ordinary YAML and loads."""
    text = (
        HEAD
        + f"""\
targets:
  - instance_id: &inst {INSTANCE}
    proxy_id: {PROXY}
  - instance_id: *inst
    proxy_id: all0
""".replace("all0", "a" * 32 + "po02")
    )
    plan = parse_plan(text, path="x.yaml")
    assert [t.instance_id for t in plan.targets] == [INSTANCE, INSTANCE]


def test_plan_error_is_a_usage_error_with_exit_code_2() -> None:
    """An invalid plan raises PlanError, a UsageError whose exit code is 2."""
    with pytest.raises(UsageError) as caught:
        parse_plan("version: 1\n", path="p.yaml")
    assert isinstance(caught.value, PlanError)
    assert caught.value.exit_code == ExitCode.USAGE == 2


# --- version ---------------------------------------------------------------------------------------------
def test_version_is_required() -> None:
    """A plan without version says so at the top-level mapping."""
    assert issues(VALID.replace("version: 1\n", "")) == [
        "p.yaml:1:1: version: missing required key 'version'; expected the integer 1"
    ]


def test_version_2_is_unsupported() -> None:
    """Another version is named and the supported one stated."""
    assert issues(VALID.replace("version: 1", "version: 2")) == [
        "p.yaml:1:10: version: unsupported plan version 2; this orchestrator reads version 1"
    ]


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("'1'", "'1'"),
        ("1.0", "the number 1.0"),
        ("true", "the boolean true"),
        ("yes", "the boolean true (unquoted `yes`)"),
    ],
)
def test_version_must_be_the_integer_1(value: str, got: str) -> None:
    """A quoted, float or boolean version is a type error naming what YAML read."""
    assert issues(VALID.replace("version: 1", f"version: {value}")) == [
        f"p.yaml:1:10: version: expected the integer 1, got {got}"
    ]


# --- unknown and duplicate keys --------------------------------------------------------------------------
def test_an_unknown_key_suggests_the_close_one() -> None:
    """A misspelt key is reported at the key, with a did-you-mean."""
    assert issues(plan_with("limits:\n  concurency: 5\n")) == [
        "p.yaml:7:3: limits.concurency: unknown key 'concurency' (did you mean 'concurrency'?)"
    ]


def test_an_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    """A key nothing like an allowed one gets the list of allowed keys."""
    assert issues(plan_with("retry:\n  backoff: 2\n")) == [
        "p.yaml:7:3: retry.backoff: unknown key 'backoff'; allowed: attempts, base_delay, max_delay, timeout"
    ]


def test_a_section_key_at_the_top_level_points_to_its_section() -> None:
    """`rate` at the top level suggests limits.rate; `mode` suggests defaults.mode."""
    assert issues(plan_with("rate: 5/s\nmode: global\n")) == [
        "p.yaml:6:1: rate: unknown key 'rate' (did you mean 'limits.rate'?)",
        "p.yaml:7:1: mode: unknown key 'mode' (did you mean 'defaults.mode'?)",
    ]


def test_a_key_of_two_sections_suggests_both() -> None:
    """`timeout` at the top level suggests retry.timeout and jobs.timeout."""
    assert issues(plan_with("timeout: 5s\n")) == [
        "p.yaml:6:1: timeout: unknown key 'timeout' (did you mean 'retry.timeout' or 'jobs.timeout'?)"
    ]


def test_unknown_keys_in_a_target_are_reported() -> None:
    """A target's unknown key is located at the key, with its index in the field path."""
    text = HEAD + ONE_TARGET + f"  - instance_id: {INSTANCE}\n    proxy: {'b' * 32}po01\n"
    assert issues(text) == [
        "p.yaml:9:5: targets[1].proxy_id: missing required key 'proxy_id'; expected 'all', "
        "or 28 to 32 letters or digits followed by 'po' and two digits",
        "p.yaml:10:5: targets[1].proxy: unknown key 'proxy' (did you mean 'proxy_id'?)",
    ]


def test_duplicate_keys_name_both_lines() -> None:
    """A key written twice in one mapping is an error naming both lines, at the second."""
    text = plan_with("limits:\n  rate: 5/s\n  concurrency: 3\n  rate: 10/s\nregion: cn-east-3\n")
    assert issues(text) == [
        "p.yaml:9:3: limits.rate: duplicate key 'rate' (lines 7 and 9); keep only one",
        "p.yaml:10:1: region: duplicate key 'region' (lines 2 and 10); keep only one",
    ]


def test_duplicate_keys_are_found_however_they_are_quoted() -> None:
    """`mode` and `"mode"` are the same key."""
    text = (
        HEAD
        + f"targets:\n  - instance_id: {INSTANCE}\n    proxy_id: {PROXY}\n"
        + '    mode: global\n    "mode": eventual\n'
    )
    assert issues(text) == ["p.yaml:10:5: targets[0].mode: duplicate key 'mode' (lines 9 and 10); keep only one"]


# --- targets ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ("targets: []\n", "p.yaml:6:10: targets: expected a non-empty list of targets, got an empty list"),
        ("targets:\n", "p.yaml:6:9: targets: expected a non-empty list of targets, got an empty value"),
        ("targets: {a: 1}\n", "p.yaml:6:10: targets: expected a non-empty list of targets, got a mapping"),
        ("targets: all\n", "p.yaml:6:10: targets: expected a non-empty list of targets, got 'all'"),
    ],
)
def test_targets_must_be_a_non_empty_list(targets: str, message: str) -> None:
    """An empty, missing-valued or non-list `targets` is one issue at its value."""
    assert issues(HEAD + targets) == [message]


def test_targets_is_required() -> None:
    """A plan without targets says so at the top-level mapping."""
    assert issues(HEAD) == ["p.yaml:1:1: targets: missing required key 'targets'; expected a non-empty list of targets"]


def test_a_target_must_be_a_mapping() -> None:
    """A bare id in the target list is a clear error at that item."""
    assert issues(HEAD + ONE_TARGET + f"  - {INSTANCE}\n") == [
        "p.yaml:9:5: targets[1]: expected a mapping with the keys instance_id, proxy_id, mode, project_id, "
        f"got '{INSTANCE}'"
    ]


def test_duplicate_targets_name_the_first_occurrence() -> None:
    """The same project, instance and proxy twice is an error at the second, naming the first's line."""
    text = VALID + f"  - instance_id: {INSTANCE}\n    proxy_id: {PROXY}\n    mode: global\n"
    assert issues(text) == [
        "p.yaml:9:5: targets[1]: duplicate target: same project_id, instance_id and proxy_id as "
        "targets[0] (line 7); keep one"
    ]


def test_duplicates_are_found_after_defaults_are_applied() -> None:
    """A target naming the top-level project explicitly duplicates one that inherits it."""
    text = VALID + f"  - {{instance_id: {INSTANCE}, proxy_id: {PROXY}, project_id: {PROJECT}}}\n"
    assert issues(text)[0].startswith("p.yaml:9:5: targets[1]: duplicate target: same project_id")


def test_the_same_proxy_in_another_project_is_not_a_duplicate() -> None:
    """Targets differing only in project_id are distinct."""
    text = VALID + f"  - {{instance_id: {INSTANCE}, proxy_id: {PROXY}, project_id: {'a' * 32}}}\n"
    assert len(parse_plan(text, path="p.yaml").targets) == 2


def test_all_after_an_explicit_proxy_is_ambiguous() -> None:
    """`proxy_id: all` after an explicit proxy of the same instance is ambiguous."""
    text = VALID + f"  - instance_id: {INSTANCE}\n    proxy_id: all\n"
    assert issues(text) == [
        "p.yaml:9:5: targets[1]: ambiguous: proxy_id: all covers the proxy that targets[0] (line 7) names "
        "on the same instance; keep one"
    ]


def test_an_explicit_proxy_after_all_is_ambiguous() -> None:
    """An explicit proxy after `proxy_id: all` of the same instance is ambiguous too."""
    text = HEAD + f"targets:\n  - instance_id: {INSTANCE}\n    proxy_id: all\n" + ONE_TARGET.replace("targets:\n", "")
    assert issues(text) == [
        "p.yaml:9:5: targets[1]: ambiguous: targets[0] (line 7) already covers every proxy of this instance "
        "with proxy_id: all; keep one"
    ]


def test_all_twice_is_a_duplicate() -> None:
    """Two `proxy_id: all` for one instance are plain duplicates."""
    text = (
        HEAD
        + f"targets:\n  - {{instance_id: {INSTANCE}, proxy_id: all}}\n"
        + f"  - {{instance_id: {INSTANCE}, proxy_id: all}}\n"
    )
    assert issues(text) == [
        "p.yaml:8:5: targets[1]: duplicate target: same project_id, instance_id and proxy_id as "
        "targets[0] (line 7); keep one"
    ]


def test_a_target_without_mode_needs_defaults_mode() -> None:
    """Without defaults.mode, a target lacking mode is an error at that target."""
    text = VALID.replace("defaults:\n  mode: session\n", "")
    assert issues(text) == [
        "p.yaml:5:5: targets[0].mode: missing mode and no defaults.mode is set; allowed: session, global, eventual"
    ]


def test_a_target_without_project_needs_a_top_level_project() -> None:
    """Without a top-level project_id, a target lacking project_id is an error at that target."""
    text = VALID.replace(f"project_id: {PROJECT}\n", "")
    assert issues(text) == [
        "p.yaml:6:5: targets[0].project_id: missing project_id and no top-level project_id; "
        "allowed: 32 letters or digits"
    ]


@pytest.mark.parametrize(
    ("value", "got"), [("fast", "'fast'"), ("Session", "'Session'"), ("''", "''"), ("[session]", "a list")]
)
def test_mode_must_be_one_of_three(value: str, got: str) -> None:
    """A mode other than session, global, eventual names the three."""
    assert issues(VALID.replace("mode: session", f"mode: {value}")) == [
        f"p.yaml:5:9: defaults.mode: expected one of session, global, eventual, got {got}"
    ]


# --- ids -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "proxy_id",
    [PROXY, "a" * 32 + "po01", "A" * 28 + "po99", "all", "0" * 30 + "po00"],
)
def test_valid_proxy_ids(proxy_id: str) -> None:
    """The contract's 35-character example, 32 to 36 characters ending in po + 2 digits, and `all` pass."""
    plan = parse_plan(VALID.replace(PROXY, proxy_id), path="p.yaml")
    assert plan.targets[0].proxy_id == proxy_id


# Characters that must never get into an id (and so into a request path), put in the middle of a valid id.
UNSAFE = ["/", "..", "%2F", " ", "\t", "\x00", "\n", "\u0430", "\uff41", "\u0661", "-", "_", "."]
REGEXES = {
    "project_id": (PROJECT_ID_RE, PROJECT),
    "instance_id": (INSTANCE_ID_RE, INSTANCE),
    "proxy_id": (PROXY_ID_RE, PROXY),
}


@pytest.mark.parametrize("kind", sorted(REGEXES))
@pytest.mark.parametrize("bad", UNSAFE)
def test_id_regexes_reject_unsafe_characters(kind: str, bad: str) -> None:
    """Slashes, dots, percent, whitespace, control characters and look-alikes never match an id regex."""
    regex, good = REGEXES[kind]
    assert not regex.fullmatch(good[:10] + bad + good[10 + len(bad) :])
    assert not regex.fullmatch(good + bad)
    assert not regex.fullmatch(bad + good)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("project_id", "a" * 31),
        ("project_id", "a" * 33),
        ("instance_id", "a" * 31 + "in07"),
        ("instance_id", "a" * 33 + "in07"),
        ("instance_id", "a" * 32 + "in7"),
        ("instance_id", "a" * 32 + "IN07"),
        ("instance_id", "a" * 32 + "po07"),
        ("proxy_id", "a" * 27 + "po01"),
        ("proxy_id", "a" * 33 + "po01"),
        ("proxy_id", "a" * 32 + "po1"),
        ("proxy_id", "a" * 32 + "PO01"),
        ("proxy_id", "a" * 32 + "in01"),
        ("proxy_id", "a" * 32 + "po\u0661\u0662"),
        ("proxy_id", "ALL"),
        ("proxy_id", "all"),
        ("proxy_id", ""),
    ],
)
def test_id_regexes_reject_wrong_shapes(kind: str, value: str) -> None:
    """Ids of the wrong length, suffix or case do not match (`all` is handled apart from the regex)."""
    regex, _ = REGEXES[kind]
    assert not regex.fullmatch(value)


def test_id_regexes_accept_the_contract_examples() -> None:
    """The contract's example ids match."""
    assert PROJECT_ID_RE.fullmatch(PROJECT)
    assert INSTANCE_ID_RE.fullmatch(INSTANCE)
    assert PROXY_ID_RE.fullmatch(PROXY)


def test_an_invalid_proxy_id_is_shown_safely() -> None:
    """A bad id is shown ASCII-escaped, so look-alikes and control characters are visible."""
    bad = "\u0430" * 32 + "po01"
    text = VALID.replace(f"proxy_id: {PROXY}", f'proxy_id: "{bad}"')
    assert issues(text) == [
        "p.yaml:8:15: targets[0].proxy_id: invalid proxy_id "
        + ascii(bad[:40])
        + "; allowed: 'all', or 28 to 32 letters or digits followed by 'po' and two digits"
    ]


def test_a_long_invalid_id_is_truncated() -> None:
    """A very long bad id is cut to 40 characters, with its length."""
    bad = "x/" * 100
    (line,) = issues(VALID.replace(f"proxy_id: {PROXY}", f"proxy_id: {bad}"))
    assert f"invalid proxy_id '{bad[:40]}'... (200 characters); allowed:" in line


@pytest.mark.parametrize(
    ("field", "line", "column", "value", "allowed"),
    [
        (
            "instance_id",
            7,
            18,
            INSTANCE[:-1],
            "32 letters or digits followed by 'in' and two digits (36 characters)",
        ),
        (
            "instance_id",
            7,
            18,
            "../" + INSTANCE[3:],
            "32 letters or digits followed by 'in' and two digits (36 characters)",
        ),
        ("project_id", 3, 13, PROJECT + "0", "32 letters or digits"),
        ("project_id", 3, 13, PROJECT[:16] + "-" + PROJECT[17:], "32 letters or digits"),
    ],
)
def test_invalid_ids_say_what_is_allowed(field: str, line: int, column: int, value: str, allowed: str) -> None:
    """An id of the wrong shape is located at its value and the allowed shape is stated."""
    original = {"instance_id": INSTANCE, "project_id": PROJECT}[field]
    text = VALID.replace(f"{field}: {original}", f"{field}: {value}")
    path = "targets[0].instance_id" if field == "instance_id" else "project_id"
    assert issues(text) == [f"p.yaml:{line}:{column}: {path}: invalid {field} '{value}'; allowed: {allowed}"]


# --- numbers ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "got"),
    [
        ('"ten"', "'ten'"),
        ("0", "the number 0"),
        ("1001", "the number 1001"),
        ("-1", "the number -1"),
        ("10.0", "the number 10.0"),
        ("true", "the boolean true"),
        ("", "an empty value"),
        ("[10]", "a list"),
    ],
)
def test_concurrency_must_be_an_integer_in_range(value: str, got: str) -> None:
    """A concurrency that is text, out of range, a float, a boolean or empty names the range."""
    assert issues(plan_with(f"limits:\n  concurrency: {value}\n")) == [
        f"p.yaml:7:{16 if value else 15}: limits.concurrency: expected an integer from 1 to 1000, got {got}"
    ]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("per_instance", "101", "expected an integer from 1 to 100, got the number 101"),
        ("per_instance", "0", "expected an integer from 1 to 100, got the number 0"),
    ],
)
def test_per_instance_range(key: str, value: str, message: str) -> None:
    """per_instance is an integer from 1 to 100."""
    assert issues(plan_with(f"limits:\n  {key}: {value}\n")) == [f"p.yaml:7:17: limits.{key}: {message}"]


@pytest.mark.parametrize(
    ("value", "got"),
    [("0", "the number 0"), ("21", "the number 21"), ("no", "the boolean false (unquoted `no`)")],
)
def test_attempts_range(value: str, got: str) -> None:
    """retry.attempts is an integer from 1 to 20."""
    assert issues(plan_with(f"retry:\n  attempts: {value}\n")) == [
        f"p.yaml:7:13: retry.attempts: expected an integer from 1 to 20, got {got}"
    ]


# --- rates and durations in the plan ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "rate"),
    [
        ("10/s", Rate(10, 1.0)),
        ("600/min", Rate(600, 60.0)),
        ("3600/h", Rate(3600, 3600.0)),
        ("10", Rate(10, 1.0)),
        ("0.5", Rate(1, 2.0)),
        ("2.5", Rate(5, 2.0)),
        ("'7'", Rate(7, 1.0)),
    ],
)
def test_rates_in_the_plan(value: str, rate: Rate) -> None:
    """limits.rate reads N/s, N/min, N/h and plain numbers per second."""
    assert parse_plan(plan_with(f"limits:\n  rate: {value}\n"), path="p.yaml").limits.rate == rate


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "10/sec",
            "invalid rate '10/sec'; allowed: N/s, N/min or N/h with N a positive integer (10/s, 600/min), "
            "or a positive number per second",
        ),
        (
            "0/s",
            "the rate must be above 0, got '0/s'; allowed: N/s, N/min or N/h with N a positive integer "
            "(10/s, 600/min), or a positive number per second",
        ),
        (
            "-5",
            "the rate must be a finite number above 0, got -5; allowed: N/s, N/min or N/h with N a positive "
            "integer (10/s, 600/min), or a positive number per second",
        ),
        (
            "on",
            "expected a rate: N/s, N/min or N/h with N a positive integer (10/s, 600/min), or a positive "
            "number per second, got the boolean true (unquoted `on`)",
        ),
    ],
)
def test_invalid_rates_in_the_plan(value: str, message: str) -> None:
    """A bad rate is located at its value and says what is allowed."""
    assert issues(plan_with(f"limits:\n  rate: {value}\n")) == [f"p.yaml:7:9: limits.rate: {message}"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "the duration must be above 0s, got 0"),
        ("0ms", "the duration must be above 0s, got '0ms'"),
        (
            "5 min",
            "invalid duration '5 min'; allowed: a number of seconds, or h/m/s/ms parts in that order "
            "such as 500ms, 30s, 1m30s, 2h",
        ),
        ("-1", "the duration must be a finite number of seconds >= 0, got -1"),
        (".inf", "the duration must be a finite number of seconds >= 0, got inf"),
        (
            "2024-01-01",
            "expected a duration above 0: a number of seconds, or h/m/s/ms parts in that order such "
            "as 500ms, 30s, 1m30s, 2h, got the date 2024-01-01",
        ),
    ],
)
def test_invalid_durations_in_the_plan(value: str, message: str) -> None:
    """A bad duration is located at its value and says what is allowed."""
    assert issues(plan_with(f"jobs:\n  timeout: {value}\n")) == [f"p.yaml:7:12: jobs.timeout: {message}"]


def test_visibility_grace_may_be_zero_but_not_negative() -> None:
    """jobs.visibility_grace accepts 0 (no grace) but not a negative duration."""
    assert parse_plan(plan_with("jobs:\n  visibility_grace: 0s\n"), path="p.yaml").jobs.visibility_grace == 0
    assert issues(plan_with("jobs:\n  visibility_grace: -1\n")) == [
        "p.yaml:7:21: jobs.visibility_grace: the duration must be a finite number of seconds >= 0, got -1"
    ]


def test_max_delay_below_base_delay_is_an_error() -> None:
    """max_delay must be at least base_delay; the error is at max_delay."""
    assert issues(plan_with("retry:\n  base_delay: 2s\n  max_delay: 1s\n")) == [
        "p.yaml:8:14: retry.max_delay: max_delay 1s is below base_delay 2s; allowed: a duration >= base_delay"
    ]


def test_base_delay_above_the_default_max_delay_is_an_error() -> None:
    """A base_delay above the default max_delay (30 s) asks for max_delay too."""
    assert issues(plan_with("retry:\n  base_delay: 1m\n")) == [
        "p.yaml:7:15: retry.base_delay: base_delay 60s is above the default max_delay 30s; set max_delay too"
    ]


# --- region, endpoint, name ------------------------------------------------------------------------------
def test_region_or_endpoint_is_required() -> None:
    """A plan with neither region nor endpoint says so."""
    assert issues(VALID.replace("region: cn-north-4\n", "")) == [
        "p.yaml:1:1: region: missing region or endpoint; set region (e.g. cn-north-4) or endpoint"
    ]


def test_an_unknown_region_without_endpoint_lists_the_known_ones() -> None:
    """An unknown region lists the known regions and suggests an endpoint."""
    (line,) = issues(VALID.replace("cn-north-4", "xx-yy-9"))
    assert line.startswith("p.yaml:2:9: region: unknown region 'xx-yy-9'; known: af-south-1, ap-southeast-1,")
    assert line.endswith(", tr-west-1; or set endpoint")


@pytest.mark.parametrize("region", ["CN-NORTH-4", "cn_north_4", "cn-north", "north-4", "cn-north-4\n", "cn-north-4/x"])
def test_an_implausible_region_is_invalid(region: str) -> None:
    """A region that is not shaped like one is invalid even with an endpoint."""
    text = VALID.replace("region: cn-north-4", f"region: {json.dumps(region)}\nendpoint: https://example.com")
    assert issues(text) == [f"p.yaml:2:9: region: invalid region {region!a}; allowed: a region id such as cn-north-4"]


def test_an_invalid_endpoint_says_why() -> None:
    """An endpoint over plain http to a remote host is refused with the reason."""
    text = VALID.replace("region: cn-north-4", "endpoint: http://example.com")
    assert issues(text) == [
        "p.yaml:2:11: endpoint: invalid endpoint 'http://example.com': plain http is only allowed to "
        "localhost, 127.0.0.0/8 or ::1; use https"
    ]


@pytest.mark.parametrize("name", ["'../etc'", "'a b'", "-x", "'x '", "''", "'" + "n" * 65 + "'"])
def test_an_invalid_name_is_refused(name: str) -> None:
    """A name must be 1 to 64 letters, digits, '.', '_' or '-' (it ends up in file names)."""
    (line,) = issues(plan_with(f"name: {name}\n"))
    assert line.startswith("p.yaml:6:7: name: invalid name ")
    assert line.endswith("; allowed: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")


@pytest.mark.parametrize(("section", "column"), [("limits", 8), ("retry", 7), ("jobs", 6), ("defaults", 10)])
def test_an_empty_section_is_an_error(section: str, column: int) -> None:
    """`limits:` with nothing under it is an error rather than a silent default."""
    text = (HEAD.replace("defaults:\n  mode: session\n", "") + f"{section}:\n" + ONE_TARGET).replace(
        f"    proxy_id: {PROXY}\n", f"    proxy_id: {PROXY}\n    mode: global\n"
    )
    (line,) = issues(text)
    assert line.startswith(f"p.yaml:4:{column}: {section}: expected a mapping with the keys ")
    assert line.endswith(", got an empty value")


# --- all together ----------------------------------------------------------------------------------------
def test_every_issue_is_reported_in_file_order() -> None:
    """Problems in many places are all reported, one line each, sorted by line."""
    text = f"""\
version: 1
name: yes
region: cn-north-4
limits:
  concurency: 5
  rate: fast
retry:
  attempts: 50
targets:
  - instance_id: {INSTANCE}
    proxy_id: {PROXY}
    mode: on
  - instance_id: 12345
    proxy_id: "x/../y"
    mode: global
    mode: session
  - foo
"""
    assert issues(text) == [
        "p.yaml:2:7: name: unquoted `yes` is read by YAML as the boolean true; quote it ('yes') if you meant the text",
        "p.yaml:5:3: limits.concurency: unknown key 'concurency' (did you mean 'concurrency'?)",
        "p.yaml:6:9: limits.rate: invalid rate 'fast'; allowed: N/s, N/min or N/h with N a positive integer "
        "(10/s, 600/min), or a positive number per second",
        "p.yaml:8:13: retry.attempts: expected an integer from 1 to 20, got the number 50",
        "p.yaml:10:5: targets[0].project_id: missing project_id and no top-level project_id; "
        "allowed: 32 letters or digits",
        "p.yaml:12:11: targets[0].mode: unquoted `on` is read by YAML as the boolean true; quote it ('on') "
        "if you meant the text",
        "p.yaml:13:5: targets[1].project_id: missing project_id and no top-level project_id; "
        "allowed: 32 letters or digits",
        "p.yaml:13:18: targets[1].instance_id: expected a string, got the number 12345; quote it ('12345')",
        "p.yaml:14:15: targets[1].proxy_id: invalid proxy_id 'x/../y'; allowed: 'all', or 28 to 32 "
        "letters or digits followed by 'po' and two digits",
        "p.yaml:16:5: targets[1].mode: duplicate key 'mode' (lines 15 and 16); keep only one",
        "p.yaml:17:5: targets[2]: expected a mapping with the keys instance_id, proxy_id, mode, project_id, got 'foo'",
    ]


def _big_plan(count: int, *, proxy_suffix: str = "po01") -> str:
    lines = [HEAD, "targets:\n"]
    lines += [f"  - instance_id: {i:032x}in01\n    proxy_id: {i:032x}{proxy_suffix}\n" for i in range(count)]
    return "".join(lines)


def test_ten_thousand_targets_load_in_linear_time() -> None:
    """10 000 targets load, and take about ten times as long as 1 000 (not a hundred)."""
    small, big = _big_plan(1000), _big_plan(10_000)
    started = time.perf_counter()
    parse_plan(small, path="p.yaml")
    small_time = time.perf_counter() - started
    started = time.perf_counter()
    plan = parse_plan(big, path="p.yaml")
    big_time = time.perf_counter() - started
    assert len(plan.targets) == 10_000
    assert plan.targets[-1].line == 6 + 2 * 9_999 + 1
    assert big_time < 30 * small_time + 1.0


def test_ten_thousand_invalid_targets_give_ten_thousand_issues() -> None:
    """Every invalid target of a large plan is reported, each at its own line."""
    with pytest.raises(PlanError) as caught:
        parse_plan(_big_plan(10_000, proxy_suffix="po1"), path="p.yaml")
    assert len(caught.value.issues) == 10_000
    assert [i.line for i in caught.value.issues[:3]] == [8, 10, 12]


# --- parse_rate and parse_duration -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "rate"),
    [
        ("10/s", Rate(10, 1.0)),
        (" 10/s ", Rate(10, 1.0)),
        ("600/min", Rate(600, 60.0)),
        ("1/h", Rate(1, 3600.0)),
        (10, Rate(10, 1.0)),
        (10.0, Rate(10, 1.0)),
        (0.5, Rate(1, 2.0)),
        (2.5, Rate(5, 2.0)),
        (0.25, Rate(1, 4.0)),
        (0.001, Rate(1, 1000.0)),
        ("0.5", Rate(1, 2.0)),
        ("25", Rate(25, 1.0)),
        (10_000, Rate(10_000, 1.0)),
    ],
)
def test_parse_rate(value: object, rate: Rate) -> None:
    """parse_rate reads N/s, N/min, N/h and numbers per second into a small count/period."""
    assert parse_rate(value) == rate


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("10/sec", "invalid rate"),
        ("10 / s", "invalid rate"),
        ("10/2s", "invalid rate"),
        ("ten", "invalid rate"),
        ("", "invalid rate"),
        ("1e3", "invalid rate"),
        ("0/s", "above 0"),
        (0, "above 0"),
        (-1, "above 0"),
        (math.inf, "finite"),
        (math.nan, "finite"),
        (True, "invalid rate"),
        (None, "invalid rate"),
        ([10], "invalid rate"),
        (0.0001, "below 1 per 1000 s"),
        (10_001, "at most 10000/s"),
        ("600001/min", "at most 10000/s"),
        (10**400, "at most 10000/s"),
    ],
)
def test_parse_rate_rejects(value: object, match: str) -> None:
    """parse_rate raises ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=match):
        parse_rate(value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("2s", 2.0),
        ("1m", 60.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h0m5s", 3605.0),
        ("1.5s", 1.5),
        ("2h30m", 9000.0),
        ("1s500ms", 1.5),
        ("30", 30.0),
        ("0.25", 0.25),
        (" 5s ", 5.0),
        (0, 0.0),
        (7, 7.0),
        (0.1, 0.1),
        ("0s", 0.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    """parse_duration reads h/m/s/ms parts in order, or a number of seconds."""
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "s",
        "5 s",
        "5sec",
        "30s1m",
        "1m 30s",
        "-1s",
        "1d",
        "1e3",
        "PT5S",
        "5.s",
        True,
        None,
        -1,
        math.inf,
        math.nan,
        10**400,
        "9" * 400,
        [1],
    ],
)
def test_parse_duration_rejects(value: object) -> None:
    """parse_duration raises ValueError for anything else, and for negative or infinite values."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


# --- the example plans -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["small.yaml", "all-proxies.yaml", "demo.yaml"])
def test_the_example_plans_are_valid(name: str) -> None:
    """Every example plan in plans/ loads."""
    plan = load_plan(PLANS / name)
    assert plan.targets


def test_the_demo_plan_is_what_its_script_makes(tmp_path: Path) -> None:
    """plans/demo.yaml is exactly the output of plans/make_demo.py, and is the size it promises."""
    out = tmp_path / "demo.yaml"
    subprocess.run([sys.executable, str(PLANS / "make_demo.py"), str(out)], check=True)
    assert out.read_bytes() == (PLANS / "demo.yaml").read_bytes()
    plan = load_plan(out)
    instances = {t.instance_id for t in plan.targets}
    assert 280 <= len(plan.targets) <= 320
    assert 110 <= len(instances) <= 130
    assert {t.mode for t in plan.targets} == {"session", "global", "eventual"}
    assert plan.limits.rate == Rate(50, 1.0)
    assert plan.limits.concurrency == 20
    assert plan.jobs.poll_interval == 0.2


# --- properties ------------------------------------------------------------------------------------------
@settings()
@given(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999))
def test_duration_parts_add_up(hours: int, minutes: int, seconds: int, millis: int) -> None:
    """ "XhYmZsWms" is X hours + Y minutes + Z seconds + W milliseconds."""
    expected = hours * 3600 + minutes * 60 + seconds + millis / 1000
    assert parse_duration(f"{hours}h{minutes}m{seconds}s{millis}ms") == pytest.approx(expected)


@settings()
@given(st.floats(min_value=0.001, max_value=10_000, allow_nan=False))
def test_a_numeric_rate_is_close_and_small(value: float) -> None:
    """A number becomes count/period within 1/1000 of it, with a period of at most 1000 s."""
    rate = parse_rate(value)
    assert rate.count >= 1
    assert 1 <= rate.period <= 1000
    assert rate.per_second == pytest.approx(value, rel=1e-3, abs=1e-3)


# --- iam_endpoint (issue 3) -----------------------------------------------------------------------------------
def test_an_iam_endpoint_is_read_and_checked_like_an_endpoint() -> None:
    """`iam_endpoint` is an optional https URL (http only on loopback), trailing slash dropped."""
    assert parse_plan(VALID, path="p.yaml").iam_endpoint is None
    plan = parse_plan(plan_with("iam_endpoint: https://iam.cn-north-4.myhuaweicloud.com/\n"), path="p.yaml")
    assert plan.iam_endpoint == "https://iam.cn-north-4.myhuaweicloud.com"
    assert issues(plan_with("iam_endpoint: http://iam.example.com\n")) == [
        "p.yaml:6:15: iam_endpoint: invalid endpoint 'http://iam.example.com': plain http is only allowed to "
        "localhost, 127.0.0.0/8 or ::1; use https"
    ]


def test_a_misspelt_iam_endpoint_is_an_unknown_key_with_a_suggestion() -> None:
    """A near miss of `iam_endpoint` is refused with a did-you-mean, never silently ignored."""
    (line,) = issues(plan_with("iam_endpiont: https://iam.example.com\n"))
    assert line.startswith("p.yaml:6:1: iam_endpiont: unknown key") and "iam_endpoint" in line
