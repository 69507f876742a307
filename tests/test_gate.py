"""The preview gate: the preview file's content, reading it back, the three refusals, and per-target drift."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fakes import PROJECT, instance_id, make_plan, proxy_id

from orchestrator.errors import ExitCode, GateRefused
from orchestrator.gate import (
    Preview,
    PreviewTarget,
    check_gate,
    drift,
    load_preview,
    observed,
    parse_preview,
    preview_document,
)
from orchestrator.plan import GateSettings, Plan, Target, Window
from orchestrator.preview import Action, Step
from orchestrator.report import Outcome, TargetOutcome

NOW = datetime(2026, 12, 2, 12, 0, 1, tzinfo=UTC)
ENDPOINT = "https://gaussdb.cn-north-4.myhuaweicloud.com"
I1, I2 = instance_id(1), instance_id(2)
P1, P2, P3 = proxy_id(1), proxy_id(2), proxy_id(3)
STEPS = [
    Step(PROJECT, I1, P1, "session", "global", Action.CHANGE),
    Step(PROJECT, I1, P2, "global", "global", Action.UNCHANGED),
    Step(PROJECT, I1, P3, None, "global", Action.MISSING),
]
MISSING_OUTCOME = TargetOutcome(PROJECT, I1, P3, None, "global", Outcome.FAILED, error_code="proxy_not_found")
UNREADABLE = TargetOutcome(
    PROJECT, I2, "all", None, "eventual", Outcome.FAILED, http_status=500, error_code="DBS.01", error_msg="boom"
)


def plan(**overrides: Any) -> Plan:
    targets = [Target(PROJECT, I1, "all", "global"), Target(PROJECT, I2, "all", "eventual")]
    return make_plan(targets, **{"digest": "ab" * 32, **overrides})


def document(**overrides: Any) -> dict[str, Any]:
    return preview_document(plan(**overrides), ENDPOINT, STEPS, [MISSING_OUTCOME, UNREADABLE], NOW, 125.04)


# --- the document ------------------------------------------------------------------------------------------
def test_the_document_keeps_the_cli_format_and_adds_the_gate_fields() -> None:
    """kind, version, plan, digest, times, endpoint, counts and targets as `preview` wrote them, plus the rest."""
    doc = document()
    assert {k: doc[k] for k in ("kind", "version", "plan", "plan_digest", "created_at", "expires_at", "endpoint")} == {
        "kind": "orchestrator-preview",
        "version": 1,
        "plan": "plans/test.yaml",
        "plan_digest": "ab" * 32,
        "created_at": "2026-12-02T12:00:01Z",
        "expires_at": "2026-12-03T12:00:01Z",
        "endpoint": ENDPOINT,
    }
    assert doc["counts"] == {"change": 1, "unchanged": 1, "missing": 1, "unreadable": 1}
    assert doc["targets"][0] == {
        "project_id": PROJECT,
        "instance_id": I1,
        "proxy_id": P1,
        "mode_before": "session",
        "mode_target": "global",
        "action": "change",
    }
    assert [t["action"] for t in doc["targets"]] == ["change", "unchanged", "missing"]
    assert doc["estimated_duration_s"] == 125.0 and doc["window"] is None and doc["plan_name"] == "test"


def test_unreadable_targets_are_listed_with_their_error_but_missing_proxies_are_not() -> None:
    """A target whose instance could not be listed is listed under unreadable; a missing proxy stays a step."""
    assert document()["unreadable"] == [
        {
            "project_id": PROJECT,
            "instance_id": I2,
            "proxy_id": "all",
            "mode_target": "eventual",
            "error_code": "DBS.01",
            "error_msg": "boom",
        }
    ]


def test_expiry_follows_gate_max_age_and_the_time_is_utc() -> None:
    """expires_at is now + gate.max_age, written in UTC whatever the offset of `now`."""
    doc = preview_document(
        plan(gate=GateSettings(3600.0)), ENDPOINT, STEPS, [], NOW.astimezone(timezone(timedelta(hours=2))), None
    )
    assert (doc["created_at"], doc["expires_at"]) == ("2026-12-02T12:00:01Z", "2026-12-02T13:00:01Z")
    assert doc["estimated_duration_s"] is None


def test_the_window_says_whether_the_run_fits() -> None:
    """With a window, the document gives its bounds, the last start, and whether the estimate fits."""
    window = Window(NOW + timedelta(hours=1), NOW + timedelta(hours=2), cutoff=600.0)
    fitting = preview_document(plan(window=window), ENDPOINT, STEPS, [], NOW, 3000.0)
    assert fitting["window"] == {
        "not_before": "2026-12-02T13:00:01Z",
        "not_after": "2026-12-02T14:00:01Z",
        "cutoff_s": 600.0,
        "last_start": "2026-12-02T13:50:01Z",
        "fits": True,
    }
    assert preview_document(plan(window=window), ENDPOINT, STEPS, [], NOW, 3001.0)["window"]["fits"] is False
    assert preview_document(plan(window=window), ENDPOINT, STEPS, [], NOW, None)["window"]["fits"] is None


def test_a_naive_now_is_a_programming_error() -> None:
    """`now` must be timezone-aware."""
    with pytest.raises(ValueError, match="timezone-aware"):
        preview_document(plan(), ENDPOINT, STEPS, [], NOW.replace(tzinfo=None), None)


# --- reading it back ---------------------------------------------------------------------------------------
def test_a_written_document_reads_back(tmp_path: Path) -> None:
    """load_preview reads what preview_document wrote, as a Preview with aware times and every target."""
    path = tmp_path / "p.preview.json"
    path.write_text(json.dumps(document(), indent=1))
    preview = load_preview(path)
    assert preview == Preview(
        path=str(path),
        plan="plans/test.yaml",
        plan_digest="ab" * 32,
        created_at=NOW,
        expires_at=NOW + timedelta(days=1),
        endpoint=ENDPOINT,
        targets=(
            PreviewTarget(PROJECT, I1, P1, "session", "global", "change"),
            PreviewTarget(PROJECT, I1, P2, "global", "global", "unchanged"),
            PreviewTarget(PROJECT, I1, P3, None, "global", "missing"),
        ),
        estimated_duration_s=125.0,
    )


def test_a_missing_file_is_refused_in_one_line(tmp_path: Path) -> None:
    """A preview that cannot be read is a gate refusal (exit 4) naming the file and the reason."""
    with pytest.raises(GateRefused) as caught:
        load_preview(tmp_path / "nope.json")
    assert str(caught.value) == f"cannot read the preview {tmp_path / 'nope.json'}: No such file or directory"
    assert caught.value.exit_code == ExitCode.GATE_REFUSED


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"kind": "orchestrator-preview", ', "invalid JSON at line 1 column 34"),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_a_garbled_file_is_refused_in_one_line(tmp_path: Path, data: bytes, problem: str) -> None:
    """Truncated JSON or bytes that are not text are refused with where and why, in one line."""
    path = tmp_path / "p.json"
    path.write_bytes(data)
    with pytest.raises(GateRefused) as caught:
        load_preview(path)
    assert str(caught.value) == f"{path} is not a preview file: {problem}; run preview again"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"kind": "something"}, "kind is 'something', expected 'orchestrator-preview'"),
        ({"version": 2}, "version 2 is not supported (this orchestrator reads 1)"),
        ({"plan_digest": None}, "plan_digest is missing or not text"),
        ({"created_at": "yesterday"}, "created_at and expires_at must be ISO 8601 times with an offset"),
        ({"expires_at": "2026-12-03T12:00:01"}, "created_at and expires_at must be ISO 8601 times with an offset"),
        ({"targets": {}}, "targets is missing or not a list"),
        ({"targets": [{"project_id": PROJECT}]}, "targets[0] is not a target (project_id, instance_id, proxy_id, modes, action)"),
        ({"targets": [{**document()["targets"][0], "mode_target": "strong"}]},
         "targets[0] is not a target (project_id, instance_id, proxy_id, modes, action)"),
    ],
)  # fmt: skip
def test_a_document_of_the_wrong_shape_is_refused(change: dict[str, Any], problem: str) -> None:
    """A JSON document that is not a version-1 preview is refused naming its first problem."""
    with pytest.raises(GateRefused) as caught:
        parse_preview({**document(), **change}, "p.json")
    assert str(caught.value) == f"p.json is not a usable preview file: {problem}; run preview again"


def test_a_json_array_is_not_a_preview() -> None:
    """The top level must be an object."""
    with pytest.raises(GateRefused, match="expected a JSON object"):
        parse_preview([], "p.json")


# --- the gate ----------------------------------------------------------------------------------------------
def preview_of(p: Plan, endpoint: str = ENDPOINT) -> Preview:
    return parse_preview(preview_document(p, endpoint, STEPS, [], NOW, None), "p.preview.json")


def test_a_fresh_preview_of_the_same_plan_and_endpoint_passes() -> None:
    """Same digest, not expired, same endpoint (a trailing slash aside): no refusal."""
    check_gate(preview_of(plan()), plan(), ENDPOINT + "/", NOW + timedelta(hours=23))


def test_a_changed_plan_is_refused() -> None:
    """A plan whose digest differs from the preview's is refused: the plan changed since the preview."""
    with pytest.raises(GateRefused) as caught:
        check_gate(preview_of(plan()), plan(digest="cd" * 32), ENDPOINT, NOW)
    assert str(caught.value) == (
        "the plan changed since the preview was made: plans/test.yaml has digest cdcdcdcdcdcd…, the preview "
        "p.preview.json approves abababababab…; run preview again and review it"
    )


def test_an_expired_preview_is_refused_saying_when() -> None:
    """At expires_at exactly the preview is no longer valid, and the message says when it expired."""
    with pytest.raises(GateRefused) as caught:
        check_gate(preview_of(plan()), plan(), ENDPOINT, NOW + timedelta(days=1))
    assert str(caught.value) == (
        "the preview p.preview.json expired at 2026-12-03T12:00:01Z (made at 2026-12-02T12:00:01Z, "
        "gate.max_age 86400s); run preview again"
    )


def test_an_edited_expiry_does_not_extend_the_preview() -> None:
    """expires_at is capped by created_at + the plan's gate.max_age, so editing the file buys nothing."""
    preview = replace(preview_of(plan()), expires_at=NOW + timedelta(days=30))
    with pytest.raises(GateRefused, match="expired at 2026-12-03T12:00:01Z"):
        check_gate(preview, plan(), ENDPOINT, NOW + timedelta(days=2))


def test_a_preview_from_the_future_is_refused() -> None:
    """A preview made more than 5 minutes after now (an edited file, a clock far off) approves nothing; a
    few minutes of clock skew between two machines is tolerated."""
    check_gate(preview_of(plan()), plan(), ENDPOINT, NOW - timedelta(minutes=5))
    with pytest.raises(GateRefused) as caught:
        check_gate(preview_of(plan()), plan(), ENDPOINT, NOW - timedelta(minutes=5, seconds=1))
    assert str(caught.value) == (
        "the preview p.preview.json says it was made at 2026-12-02T12:00:01Z, after now (2026-12-02T11:55:00Z): "
        "check this machine's clock, and run preview again"
    )


def test_another_endpoint_is_refused_showing_both() -> None:
    """A preview made against another endpoint is refused, naming both endpoints."""
    with pytest.raises(GateRefused) as caught:
        check_gate(preview_of(plan(), "http://127.0.0.1:8443"), plan(), ENDPOINT, NOW)
    assert str(caught.value) == (
        f"the preview p.preview.json was made for the endpoint http://127.0.0.1:8443, this run targets {ENDPOINT}; "
        f"run preview against {ENDPOINT}"
    )


# --- per-target compare-and-set ----------------------------------------------------------------------------
def test_observed_maps_each_previewed_target_to_its_mode() -> None:
    """observed() gives each previewed key the mode the reviewer saw (None for a missing proxy)."""
    assert observed(preview_of(plan())) == {
        (PROJECT, I1, P1): "session",
        (PROJECT, I1, P2): "global",
        (PROJECT, I1, P3): None,
    }


def test_a_step_as_previewed_is_not_drifted() -> None:
    """A change whose live mode is the one the preview observed goes ahead."""
    assert drift(observed(preview_of(plan())), STEPS[0]) is None


def test_a_step_whose_mode_moved_is_drifted_with_both_values() -> None:
    """A change whose live mode differs from the previewed one is drifted, naming both modes."""
    moved = replace(STEPS[0], mode_before="eventual")
    assert drift(observed(preview_of(plan())), moved) == (
        "mode was session in the approved preview, is eventual now; run preview again"
    )


def test_a_previewed_unchanged_target_that_now_needs_a_change_is_drifted() -> None:
    """A proxy that was at its goal when reviewed and has since moved was not approved for a change."""
    moved = Step(PROJECT, I1, P2, "session", "global", Action.CHANGE)
    assert drift(observed(preview_of(plan())), moved) == (
        "mode was global in the approved preview, is session now; run preview again"
    )


def test_a_proxy_that_appeared_since_the_preview_is_drifted() -> None:
    """A change for a proxy the preview never listed (new under `all`) was not approved."""
    new = Step(PROJECT, I1, proxy_id(9), "session", "global", Action.CHANGE)
    assert drift(observed(preview_of(plan())), new) == (
        "not in the approved preview (the proxy appeared since it was made); run preview again"
    )


def test_targets_at_their_goal_or_missing_are_never_drifted() -> None:
    """unchanged and missing steps are left to the engine (unchanged, failed), whatever the preview saw."""
    approved = observed(preview_of(plan()))
    assert drift(approved, Step(PROJECT, I1, P1, "global", "global", Action.UNCHANGED)) is None
    assert drift(approved, Step(PROJECT, I1, P1, None, "global", Action.MISSING)) is None
