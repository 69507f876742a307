"""Hostile plans: through the real CLI always a clear exit-2 error and nothing sent; through `parse_plan`, for
generated ones, a Plan whose IDs are safe or a PlanError, never another exception.

tests/test_planyaml.py already fuzzes arbitrary text and arbitrary plan-shaped mappings and pins the YAML
guards' messages; this file attacks a *valid* plan one field or one byte at a time, and runs the classic
hostile documents through the command line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from clitools import cli, simulator_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import PlanError
from orchestrator.plan import INSTANCE_ID_RE, PROJECT_ID_RE, PROXY_ID_RE, Plan, parse_plan

PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"
INSTANCE = "d512257ecca04d96a0f3a9021018a385in07"
PROXY = "7bf4a8bbb4f4fb58233a242ee13603bpo01"
VALID = f"""\
version: 1
region: cn-north-4
project_id: {PROJECT}
defaults:
  mode: session
targets:
  - instance_id: {INSTANCE}
    proxy_id: {PROXY}
"""
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "\n".join(
    f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


# --- through the CLI ------------------------------------------------------------------------------------------
HOSTILE_FILES: dict[str, bytes] = {
    "alias bomb": (VALID + BILLION_LAUGHS.replace("a: &a", "x: &a")).encode(),
    "deep nesting": (VALID + "name: " + "[" * 100_000 + "]" * 100_000 + "\n").encode(),
    "tab indentation": VALID.replace("  mode", "\tmode").encode(),
    "UTF-16 with BOM": VALID.encode("utf-16"),
    "latin-1 byte": VALID.encode().replace(b"cn-north-4", b"cn-n\xf6rth-4"),
    "NUL byte": VALID.encode().replace(b"cn-north-4", b"cn-north-4\x00"),
    "Cyrillic look-alike id": VALID.replace("d512257ecca", "d512257\u0435\u0441\u0441a").encode(),
    "fullwidth digit id": VALID.replace("in07", "in0\uff17").encode(),
    "path in proxy id": VALID.replace(PROXY, '"../../../v3/x/po01"').encode(),
    "encoded slash in id": VALID.replace(PROXY, "7bf4a8bbb4f4fb58233a242e%2F3bpo01").encode(),
    "query in project id": VALID.replace(
        f"project_id: {PROJECT}", 'project_id: "619d3e78f61b4be6?x=1&y=2f61b4be68bc"'
    ).encode(),
    "newline in id": VALID.replace(PROXY, f'"{PROXY}\\n"').encode(),
    "huge integer": VALID.replace("defaults:", "limits: {concurrency: " + "9" * 400 + "}\ndefaults:").encode(),
    "huge version": VALID.replace("version: 1", "version: " + "9" * 5000).encode(),
    "NaN rate": VALID.replace("defaults:", "limits: {rate: .nan}\ndefaults:").encode(),
    "infinite timeout": VALID.replace("defaults:", "retry: {timeout: .inf}\ndefaults:").encode(),
    "targets as a string": VALID.split("targets:")[0].encode() + b"targets: " + b"x" * 100_000 + b"\n",
    "python tag": VALID.replace("name", "n")
    .replace("region: cn-north-4", "region: !!python/object:os.system ls")
    .encode(),
}


def check_clear_error(stderr: str, stdout: str) -> None:
    assert stdout == ""
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert re.match(r"orchestrator: error: p\.yaml:\d+:\d+: \S", stderr.splitlines()[0]), stderr


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_validate_refuses_a_hostile_plan_with_one_located_error(tmp_path: Path, name: str) -> None:
    """`orchestrator validate` on a hostile file exits 2 with `p.yaml:LINE:COLUMN: ...`, never a traceback."""
    (tmp_path / "p.yaml").write_bytes(HOSTILE_FILES[name])
    result = cli("validate", "p.yaml", cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    check_clear_error(result.stderr, result.stdout)


@pytest.mark.parametrize("name", ["alias bomb", "path in proxy id", "Cyrillic look-alike id", "NaN rate"])
def test_apply_sends_nothing_for_a_hostile_plan(tmp_path: Path, name: str) -> None:
    """`orchestrator apply` with a hostile plan exits 2 before a single request reaches the service."""
    (tmp_path / "fleet.yaml").write_text(VALID)
    (tmp_path / "p.yaml").write_bytes(HOSTILE_FILES[name])
    with simulator_for(tmp_path / "fleet.yaml") as sim:
        result = cli(
            "apply", "p.yaml", "--no-gate", "--endpoint", sim.url, "--report", "r.jsonl",
            cwd=tmp_path, env={"HUAWEICLOUD_AUTH_TOKEN": "tok-hostile"}, timeout=60,
        )  # fmt: skip
        seen = sim.call(lambda simulator: len(simulator.stats.requests))
    assert result.returncode == 2, result.stderr
    check_clear_error(result.stderr, result.stdout)
    assert seen == 0
    assert not (tmp_path / "r.jsonl").exists()


def test_a_gate_max_age_beyond_the_calendar_is_refused_by_validate(tmp_path: Path) -> None:
    """A max_age no date can hold (100 000 000 h, some 11 000 years) is a located exit-2 error at validate,
    not a valid plan that later crashes `preview` with an internal OverflowError (exit 1)."""
    (tmp_path / "p.yaml").write_text(VALID.replace("defaults:", "gate: {max_age: 100000000h}\ndefaults:"))
    validated = cli("validate", "p.yaml", cwd=tmp_path, timeout=60)
    previewed = cli("preview", "p.yaml", "--simulate", "-q", cwd=tmp_path, timeout=60)
    assert "internal error" not in previewed.stderr, previewed.stderr
    assert validated.returncode == 2, validated.stdout


# --- generated: one field of a valid plan replaced by a hostile value ----------------------------------------
def valid_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(VALID)
    return data


FIELDS: list[tuple[str, ...]] = [
    ("version",), ("name",), ("region",), ("endpoint",), ("project_id",),
    ("limits", "rate"), ("limits", "concurrency"), ("limits", "per_instance"), ("limits", "adaptive"),
    ("retry", "attempts"), ("retry", "base_delay"), ("retry", "max_delay"), ("retry", "timeout"),
    ("jobs", "poll_interval"), ("jobs", "timeout"), ("jobs", "visibility_grace"),
    ("defaults", "mode"), ("gate", "max_age"), ("window", "not_before"), ("window", "cutoff"),
    ("stop", "max_failures"), ("stop", "min_sample"),
    ("targets", "0", "instance_id"), ("targets", "0", "proxy_id"), ("targets", "0", "mode"),
    ("targets", "0", "project_id"), ("targets",), ("targets", "0"),
]  # fmt: skip

LOOK_ALIKES = "аеорсхуАВЕКМНОРСТХ０１２３ⅰⅼı"  # Cyrillic, fullwidth digits, roman numerals, dotless i
PATH_BITS = ["/", "..", "%2F", "%2e%2e", "?", "#", "&", "\\", "\x00", "\n", " ", "\u202e", "\u200b", "\ufeff"]
HOSTILE_TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from([*"0123456789abcdefinpo", *LOOK_ALIKES, *PATH_BITS]), max_size=40).map("".join),
    st.builds(lambda a, b, c: a + b + c, st.sampled_from([PROJECT, INSTANCE[:32], PROXY[:31]]),
              st.sampled_from(PATH_BITS + list(LOOK_ALIKES)), st.sampled_from(["in07", "po01", "", "/session"])),
)  # fmt: skip
HOSTILE_NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=10**300, max_value=10**310),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**31, 2**63, 1e308, -0.0, 5e-324]),
)
HOSTILE_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), HOSTILE_NUMBERS, HOSTILE_TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


def put(data: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    node: Any = data
    for key in path[:-1]:
        if isinstance(node, list):
            node = node[int(key)]
        else:
            node = node.setdefault(key, {})
            if not isinstance(node, dict | list):
                return
    if isinstance(node, list):
        node[int(path[-1])] = value
    elif isinstance(node, dict):
        node[path[-1]] = value


def parse_or_issues(text: str | bytes) -> Plan | PlanError:
    """The Plan, or the PlanError; any other exception propagates and fails the test."""
    try:
        return parse_plan(text, path="fuzz.yaml")
    except PlanError as error:
        return error


def assert_safe(plan: Plan) -> None:
    """What a plan that passed validation may carry: IDs that are safe in a URL path, finite numbers."""
    for target in plan.targets:
        assert PROJECT_ID_RE.fullmatch(target.project_id)
        assert INSTANCE_ID_RE.fullmatch(target.instance_id)
        assert target.proxy_id == "all" or PROXY_ID_RE.fullmatch(target.proxy_id)
    numbers = [plan.limits.rate.count, plan.limits.rate.period, plan.retry.base_delay, plan.retry.max_delay]
    numbers += [plan.retry.timeout, plan.jobs.poll_interval, plan.jobs.timeout, plan.jobs.visibility_grace]
    assert all(math.isfinite(n) and n >= 0 for n in numbers)
    assert 1 <= plan.limits.concurrency <= 1000 and 1 <= plan.limits.per_instance <= 100


@FUZZ
@given(st.sampled_from(FIELDS), HOSTILE_VALUES)
def test_a_hostile_value_in_any_field_gives_a_safe_plan_or_a_plan_error(path: tuple[str, ...], value: object) -> None:
    """Any value in any field of a valid plan: a Plan whose IDs and numbers are safe, or a located PlanError."""
    data = valid_data()
    put(data, path, value)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    result = parse_or_issues(text)
    if isinstance(result, Plan):
        assert_safe(result)
    else:
        assert result.issues and all(issue.line >= 1 and issue.column >= 1 for issue in result.issues)


@FUZZ
@given(st.sampled_from(["instance_id", "proxy_id", "project_id"]), HOSTILE_TEXT)
def test_an_id_that_is_not_plain_ascii_alphanumerics_never_passes(field: str, value: str) -> None:
    """Look-alikes, path pieces, encoded slashes, control and invisible characters never survive as an ID."""
    data = valid_data()
    data["targets"][0][field] = value
    result = parse_or_issues(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    if isinstance(result, Plan):
        assert_safe(result)
        assert value.isascii() and value.isalnum()
    else:
        assert result.issues


BYTE_NOISE = [b"\xef\xbb\xbf", b"\t", b"\x00", b"\xff", b"\xe2\x80\xae", b"\xc2\xa0", b"\xe2\x80\x8b", b"\r", b"&a ",
              b"*a", b"!!binary ", b"{", b"[", b"'", b'"', b"\\", b"%", b"---\n", b"...\n", b"? ", b"<<: "]  # fmt: skip


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(VALID)), st.sampled_from(BYTE_NOISE) | st.binary(max_size=4)),
        min_size=1,
        max_size=4,
    )
)
def test_hostile_bytes_anywhere_give_a_safe_plan_or_a_plan_error(insertions: list[tuple[int, bytes]]) -> None:
    """BOMs, tabs, NULs, invalid UTF-8, bidi and zero-width characters, YAML syntax inserted anywhere in a valid
    plan's bytes: a Plan with safe IDs, or a PlanError, never another exception."""
    raw = VALID.encode()
    for position, noise in sorted(insertions, reverse=True):
        raw = raw[:position] + noise + raw[position:]
    result = parse_or_issues(raw)
    if isinstance(result, Plan):
        assert_safe(result)
