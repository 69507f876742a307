"""YAML with marks: reading plan text, the guards against hostile YAML, and YAML 1.1 surprises.

Every test runs twice: with libyaml's loader (CSafeLoader) and with the pure-Python SafeLoader, which differ
in small ways (plain scalar style, error offsets, error wording).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import planyaml
from orchestrator.errors import PlanError, PlanIssue
from orchestrator.plan import load_plan, parse_plan
from orchestrator.planyaml import Mark, Scalar, field_name

PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"
INSTANCE = "d512257ecca04d96a0f3a9021018a385in07"
PROXY = "7bf4a8bbb4f4fb58233a242ee13603bpo01"
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
FUZZ = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@pytest.fixture(params=["libyaml", "pure"], autouse=True)
def yaml_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every test with the C loader (when PyYAML has it) and with the pure-Python one."""
    if request.param == "pure":
        monkeypatch.setattr(planyaml, "_Loader", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    return str(request.param)


def issues(text: str | bytes, path: str = "p.yaml") -> list[str]:
    """The lines of the PlanError raised for `text` (fails the test if the plan is valid)."""
    with pytest.raises(PlanError) as caught:
        parse_plan(text, path=path)
    return str(caught.value).splitlines()


def plan_with(extra: str) -> str:
    """HEAD + extra top-level YAML + one target."""
    return HEAD + extra + ONE_TARGET


# --- marks -----------------------------------------------------------------------------------------------
def test_marks_of_values_and_keys() -> None:
    """Every value and every key gets its 1-based line and column, by path."""
    doc = planyaml.load_yaml("a: 1\nb:\n  - x: 'q'\n    y: [1, 2]\n", file="f.yaml")
    assert doc.data == {"a": 1, "b": [{"x": "q", "y": [1, 2]}]}
    assert doc.marks[()] == Mark(1, 1)
    assert doc.marks[("a",)] == Mark(1, 4)
    assert doc.marks[("b", 0)] == Mark(3, 5)
    assert doc.marks[("b", 0, "y", 1)] == Mark(4, 12)
    assert doc.key_marks[("b", 0, "y")] == Mark(4, 5)
    assert doc.mark(("b", 0, "missing", 3)) == Mark(3, 5)


def test_plain_scalars_are_remembered_with_their_text() -> None:
    """Plain scalars keep their source text and tag; quoted strings are not recorded."""
    doc = planyaml.load_yaml("a: on\nb: 'on'\nc: 010\nd: text\ne: |\n  block\n", file="f.yaml")
    assert doc.data == {"a": True, "b": "on", "c": 8, "d": "text", "e": "block\n"}
    assert doc.scalars[("a",)] == Scalar("on", True, "tag:yaml.org,2002:bool")
    assert doc.scalars[("c",)] == Scalar("010", True, "tag:yaml.org,2002:int")
    assert doc.scalars[("d",)] == Scalar("text", True, "tag:yaml.org,2002:str")
    assert ("b",) not in doc.scalars
    assert ("e",) not in doc.scalars


def test_field_name_writes_paths_like_the_messages() -> None:
    """Paths print as targets[3].mode, limits.rate, or an empty string for the document."""
    assert field_name(("targets", 3, "mode")) == "targets[3].mode"
    assert field_name(("limits", "rate")) == "limits.rate"
    assert field_name(()) == ""


# --- reading the file and the YAML ----------------------------------------------------------------------
def test_a_missing_file_is_a_plan_error(tmp_path: Path) -> None:
    """A file that cannot be read is a PlanError naming the file."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PlanError) as caught:
        load_plan(missing)
    assert str(caught.value) == f"{missing}:1:1: cannot read the plan: No such file or directory"


def test_a_directory_is_a_plan_error(tmp_path: Path) -> None:
    """Naming a directory instead of a file is a PlanError, not a crash."""
    with pytest.raises(PlanError, match="cannot read the plan"):
        load_plan(tmp_path)


def test_bytes_that_are_not_utf8_are_located() -> None:
    """Invalid UTF-8 is reported at the line and column of the first bad byte."""
    assert issues(b"version: 1\nname: ab\xff\n") == ["p.yaml:2:9: the plan is not UTF-8 text"]


def test_a_lone_surrogate_in_text_is_not_utf8() -> None:
    """A str that cannot be UTF-8 is refused like a file that is not."""
    assert issues("version: 1\nname: \ud800\n") == ["p.yaml:2:7: the plan is not UTF-8 text"]


def test_yaml_syntax_errors_carry_yaml_marks() -> None:
    """A YAML syntax error is one issue at the line and column PyYAML gives."""
    (line,) = issues("version: 1\ntargets: [\n")  # the wording differs between libyaml and PyYAML
    assert line.startswith("p.yaml:3:1: invalid YAML: while parsing a flow node ")
    (line,) = issues("version: 1\n  name: x\n")  # libyaml adds "in this context", PyYAML "here"
    assert line.startswith("p.yaml:2:7: invalid YAML: mapping values are not allowed ")


def test_control_characters_are_located() -> None:
    """A control character, which YAML refuses, is located at its line and column."""
    (line,) = issues("version: 1\nname: ab\x01c\n")
    assert line.startswith("p.yaml:2:9: invalid YAML: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "--- # nothing\n", "null\n", "~\n"])
def test_an_empty_document_is_an_error(text: str) -> None:
    """A plan with no document (or only comments) is an error, not an empty plan."""
    assert issues(text) == ["p.yaml:1:1: the plan is empty; expected a mapping with version and targets"]


def test_several_documents_are_an_error() -> None:
    """A second YAML document is refused where it starts."""
    assert issues(VALID + "---\nversion: 1\n") == [
        "p.yaml:9:1: invalid YAML: expected a single document in the stream but found another document"
    ]


def test_an_undefined_alias_is_a_yaml_error() -> None:
    """An alias to no anchor is a YAML error at the alias."""
    (line,) = issues("version: *nope\n")
    assert line.startswith("p.yaml:1:10: invalid YAML: found undefined alias")


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("- a\n- b\n", "a list"),
        ("hello\n", "'hello'"),
        ("42\n", "the number 42"),
        ("yes\n", "the boolean true (unquoted `yes`)"),
    ],
)
def test_the_top_level_must_be_a_mapping(text: str, got: str) -> None:
    """A document that is not a mapping is one clear issue."""
    assert issues(text) == [
        "p.yaml:1:1: expected a mapping with the keys version, name, region, endpoint, iam_endpoint, project_id, "
        f"limits, retry, jobs, defaults, targets, gate, window, stop, got {got}"
    ]


# --- guards ----------------------------------------------------------------------------------------------
def test_billion_laughs_is_refused() -> None:
    """Aliases that expand past 10 000 nodes are refused before any validation."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "\n".join(
        f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    started = time.perf_counter()
    (line,) = issues(text)
    assert time.perf_counter() - started < 5
    assert line.endswith(": aliases expand to more than 10000 nodes; refusing (billion laughs?)")


def test_deep_nesting_is_refused_without_crashing() -> None:
    """Nesting deeper than 50 is refused, even 200 000 levels deep (libyaml's composer would segfault)."""
    assert issues("a: " + "[" * 200_000 + "]" * 200_000) == ["p.yaml:1:53: the YAML is nested deeper than 50 levels"]
    assert issues("a:\n" + "".join("  " * i + "- \n" for i in range(60)))[0].endswith("deeper than 50 levels")


def test_nesting_of_50_levels_is_allowed_by_the_guard() -> None:
    """50 levels pass the guard (and fail later only because they are not a plan)."""
    (line,) = issues("[" * 50 + "]" * 50)
    assert "expected a mapping" in line


def test_a_recursive_alias_is_refused() -> None:
    """An alias used inside its own anchor is refused at the alias."""
    assert issues("version: 1\na: &x [1, *x]\n") == [
        "p.yaml:2:4: an alias is used inside its own anchor (recursive YAML)"
    ]


def test_unsupported_tags_are_errors() -> None:
    """Explicit tags other than the plain YAML types are refused where they are written."""
    text = plan_with("name: !!binary aGk=\nendpoint: !env URL\n")
    assert issues(text) == [
        "p.yaml:6:7: name: unsupported YAML tag '!!binary'; remove it",
        "p.yaml:7:11: endpoint: unsupported YAML tag '!env'; remove it",
    ]


def test_python_tags_are_never_constructed() -> None:
    """A !!python tag is only reported, never executed."""
    (line,) = issues(plan_with("name: !!python/object/apply:os.system ['false']\n"))
    assert line == "p.yaml:6:7: name: unsupported YAML tag '!!python/object/apply:os.system'; remove it"


def test_merge_keys_are_not_supported() -> None:
    """A YAML merge key is refused with a hint to write the keys out."""
    text = plan_with("limits:\n  <<: {concurrency: 5}\n")
    assert issues(text) == ["p.yaml:7:3: limits.<<: merge keys (<<) are not supported; write the keys out"]


def test_a_key_must_be_a_scalar() -> None:
    """A list used as a mapping key is an error at that key."""
    assert issues(plan_with("? [a, b]\n: 1\n")) == ["p.yaml:6:3: a key must be plain text, not a list or mapping"]


# --- YAML 1.1 surprises ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("word", "meaning"),
    [
        ("on", "true"),
        ("off", "false"),
        ("yes", "true"),
        ("No", "false"),
        ("TRUE", "true"),
        ("False", "false"),
    ],
)
def test_unquoted_booleans_where_text_is_expected(word: str, meaning: str) -> None:
    """An unquoted YAML 1.1 boolean where a mode or name is expected says how YAML read it."""
    assert issues(VALID.replace("mode: session", f"mode: {word}")) == [
        f"p.yaml:5:9: defaults.mode: unquoted `{word}` is read by YAML as the boolean {meaning}; "
        f"quote it ('{word}') if you meant the text"
    ]


@pytest.mark.parametrize("word", ["y", "n", "Y", "oN", "yES"])
def test_words_other_yaml_tools_read_as_booleans(word: str) -> None:
    """y, n and odd casings of boolean words are refused where free text is expected."""
    assert issues(plan_with(f"name: {word}\n")) == [
        f"p.yaml:6:7: name: unquoted `{word}` is read as a boolean by some YAML tools; "
        f"quote it ('{word}') if you meant the text"
    ]


def test_quoted_boolean_words_are_text() -> None:
    """Quoting a boolean word makes it text, as the message suggests."""
    assert parse_plan(plan_with("name: 'yes'\n"), path="p.yaml").name == "yes"


@pytest.mark.parametrize(
    ("yaml_value", "shown"),
    [("12345678901234567890123456789012", "12345678901234567890123456789012"), ("1e5", None), ("3.5", "3.5")],
)
def test_numbers_where_an_id_is_expected(yaml_value: str, shown: str | None) -> None:
    """An id YAML reads as a number must be quoted; `1e5` is text in YAML 1.1 and simply an invalid id."""
    (line,) = issues(VALID.replace(f"project_id: {PROJECT}", f"project_id: {yaml_value}"))
    if shown is None:
        assert line == "p.yaml:3:13: project_id: invalid project_id '1e5'; allowed: 32 letters or digits"
    else:
        assert line == f"p.yaml:3:13: project_id: expected a string, got the number {shown}; quote it ('{shown}')"


def test_a_number_as_name_must_be_quoted() -> None:
    """`name: 123` is a number to YAML; the message says to quote it."""
    assert issues(plan_with("name: 123\n")) == [
        "p.yaml:6:7: name: expected a string, got the number 123; quote it ('123')"
    ]


@pytest.mark.parametrize("value", ["2024-01-01", "2024-01-01T10:00:00Z"])
def test_dates_where_text_is_expected(value: str) -> None:
    """A YAML date or timestamp where text is expected must be quoted."""
    assert issues(plan_with(f"name: {value}\n")) == [
        f"p.yaml:6:7: name: unquoted `{value}` is read by YAML as a date; quote it ('{value}') if you meant the text"
    ]


def test_an_impossible_date_is_reported_not_crashed_on() -> None:
    """2024-02-30 looks like a date to YAML but is none: a located error, not a ValueError."""
    assert issues(plan_with("name: 2024-02-30\n")) == [
        "p.yaml:6:7: name: unquoted `2024-02-30` looks like a date to YAML but is not a valid one; quote it"
    ]


@pytest.mark.parametrize(
    ("field", "written", "read"),
    [
        ("concurrency", "010", "8"),
        ("concurrency", "0x10", "16"),
        ("per_instance", "1_0", "10"),
        ("concurrency", "0b11", "3"),
        ("concurrency", "1:30", "90"),
    ],
)
def test_odd_yaml_11_numbers_are_refused(field: str, written: str, read: str) -> None:
    """Octal, hex, binary, sexagesimal and underscored numbers say what YAML 1.1 made of them."""
    assert issues(plan_with(f"limits:\n  {field}: {written}\n")) == [
        f"p.yaml:7:{len(field) + 5}: limits.{field}: unquoted `{written}` is read by YAML 1.1 as the number "
        f"{read}; write {read} if you meant that, or quote it"
    ]


def test_a_sexagesimal_duration_is_refused() -> None:
    """`timeout: 1:30` (90 in YAML 1.1) is refused rather than silently 90 seconds."""
    assert issues(plan_with("retry:\n  timeout: 1:30\n")) == [
        "p.yaml:7:12: retry.timeout: unquoted `1:30` is read by YAML 1.1 as the number 90; "
        "write 90 if you meant that, or quote it"
    ]


# --- properties ------------------------------------------------------------------------------------------
def issues_or_nothing(text: str) -> tuple[PlanIssue, ...]:
    """The issues of a PlanError for `text`, or () if it is a valid plan; any other exception propagates."""
    try:
        parse_plan(text, path="fuzz.yaml")
    except PlanError as error:
        return error.issues
    return ()


@FUZZ
@given(st.text(max_size=300))
def test_any_text_gives_a_plan_or_a_plan_error(text: str) -> None:
    """Whatever the text, parse_plan returns a Plan or raises PlanError with located issues, never else."""
    assert all(i.line >= 1 and i.column >= 1 for i in issues_or_nothing(text))


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["on", "no", "1:30", "010", "2024-01-01", "all", PROXY, INSTANCE, PROJECT, "10/s", "5s"]),
)
_KEYS = st.sampled_from(
    ("version", "name", "region", "endpoint", "project_id", "limits", "retry", "jobs", "defaults", "targets",
     "rate", "concurrency", "mode", "instance_id", "proxy_id", "timeout", "x")
)  # fmt: skip
_TREES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=6),
    max_leaves=30,
)


@FUZZ
@given(st.dictionaries(_KEYS, _TREES, max_size=10))
def test_any_yaml_mapping_gives_a_plan_or_located_issues(data: dict[str, object]) -> None:
    """Random plan-like YAML gives a Plan or a PlanError whose issues are sorted and within the file."""
    text = yaml.safe_dump(data, sort_keys=False)
    found = issues_or_nothing(text)
    assert all(1 <= i.line <= text.count("\n") + 1 for i in found)
    assert [i.line for i in found] == sorted(i.line for i in found)
