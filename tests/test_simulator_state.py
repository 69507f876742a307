"""The simulator's pure layers (fleet state machine, backend answers, faults, stats), with a fake clock."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace

import pytest

import orchestrator.simulator as simulator
from orchestrator.plan import ALL_PROXIES, MODES, JobSettings, Limits, Plan, RetrySettings, Target
from orchestrator.simulator import (
    ApiError,
    Faults,
    Fleet,
    SimulatorConfig,
    Stats,
    fleet_from_plan,
    generated_proxy_ids,
    initial_mode,
    parse_faults,
)
from orchestrator.simulator.faults import FaultDecider
from orchestrator.simulator.service import Backend, parse_change
from orchestrator.simulator.stats import RequestRecord

P = "619d3e78f61b4be68bc5aa0b59edcf7b"
I1 = "d512257ecca04d96a0f3a9021018a385in07"
I2 = "e512257ecca04d96a0f3a9021018a385in07"
X = "7bf4a8bbb4f4fb58233a242ee13603bpo01"  # the doc's 35-char example
Y = "8bf4a8bbb4f4fb58233a242ee13603bbpo01"


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fleet(clock: FakeClock) -> Fleet:
    fleet = Fleet(clock=clock)
    fleet.add_proxy(P, I1, X, "eventual")
    fleet.add_proxy(P, I1, Y, "session")
    fleet.add_proxy(P, I2, "z" * 32 + "po01", "global")
    return fleet


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def change(
    backend: Backend, config: SimulatorConfig, proxy: str, now: float, instance: str = I1, **fields: object
) -> dict[str, object]:
    reply = backend.change_consistency(
        config, P, instance, proxy, body(**fields), "application/json;charset=utf-8", now
    )
    assert reply.status == 200
    assert isinstance(reply.body, dict)
    return reply.body


# --- the job state machine ---------------------------------------------------------------------------------


def test_job_moves_pending_running_completed_and_changes_the_mode_only_at_completion(fleet: Fleet) -> None:
    """A job is Pending, then Running with a percentage, then Completed, and only then the proxy changes."""
    proxy = fleet.proxy(P, I1, X, now=100.0)
    assert proxy is not None
    job = fleet.start_job("j1", proxy, "global", now=100.0, duration=10.0, pending=2.0)
    assert (job.status(101.0), job.process(101.0)) == ("Pending", "")
    assert (job.status(107.0), job.process(107.0)) == ("Running", "50%")
    assert fleet.mode(P, I1, X, now=111.9) == "eventual"
    assert (job.status(112.0), job.process(112.0)) == ("Completed", "")
    assert fleet.mode(P, I1, X, now=112.0) == "global"


def test_failed_job_leaves_the_mode_unchanged(fleet: Fleet) -> None:
    """A job with a fail reason ends Failed and the proxy keeps its old mode."""
    proxy = fleet.proxy(P, I1, X, now=100.0)
    assert proxy is not None
    job = fleet.start_job("j1", proxy, "global", now=100.0, duration=1.0, fail_reason="boom")
    assert job.status(101.0) == "Failed"
    assert fleet.mode(P, I1, X, now=200.0) == "eventual"


def test_mode_reads_resolve_jobs_lazily_against_the_bound_clock(fleet: Fleet, clock: FakeClock) -> None:
    """Reading a mode without `now` uses the bound clock, so advancing a fake clock completes jobs."""
    proxy = fleet.proxy(P, I1, X)
    assert proxy is not None
    fleet.start_job("j1", proxy, "session", now=clock(), duration=5.0)
    assert fleet.mode(P, I1, X) == "eventual"
    clock.advance(5.0)
    assert fleet.mode(P, I1, X) == "session"
    assert fleet.modes()[(P, I1, X)] == "session"


def test_unknown_proxy_mode_is_a_key_error(fleet: Fleet) -> None:
    """Asking the mode of a proxy that does not exist raises KeyError."""
    with pytest.raises(KeyError):
        fleet.mode(P, I1, "nope")


def test_add_proxy_twice_keeps_the_first(fleet: Fleet) -> None:
    """Adding an existing proxy again returns it unchanged."""
    again = fleet.add_proxy(P, I1, X, "global")
    assert again.consistence_mode == "eventual"


def test_wall_timestamps_follow_the_clock() -> None:
    """Wall-clock strings are the origin plus elapsed clock time, in the service's format."""
    from datetime import UTC, datetime

    clock = FakeClock(5.0)
    fleet = Fleet(clock=clock, wall_origin=datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC))
    assert fleet.wall(65.0) == "2026-12-03T12:01:00+0000"


# --- the PUT body [§1] ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "mode"),
    [
        ({"session_consistence": "true"}, "session"),
        ({"session_consistence": "false"}, "eventual"),
        ({"session_consistence": True}, "session"),
        ({"session_consistence": False}, "eventual"),
        ({"session_consistence": "true", "consistence_mode": "global"}, "global"),
        ({"session_consistence": False, "consistence_mode": "global"}, "global"),
        ({"session_consistence": "false", "consistence_mode": "session"}, "session"),
        ({"session_consistence": "true", "consistence_mode": ""}, "session"),
        ({"session_consistence": "false", "consistence_mode": None}, "eventual"),
    ],
)
def test_parse_change_accepts_strings_and_bools(fields: dict[str, object], mode: str) -> None:
    """session_consistence may be "true"/"false" or a JSON bool; a set consistence_mode wins."""
    assert parse_change(body(**fields)) == mode


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "DBS.200006"),
        (b"  ", "DBS.200006"),
        (b"{", "DBS.200001"),
        (b"\xff\xfe", "DBS.200001"),
        (b"[]", "DBS.200001"),
        (b"null", "DBS.200001"),
        (b"{}", "DBS.200001"),
        (b'{"consistence_mode": "global"}', "DBS.200001"),
        (b'{"session_consistence": null}', "DBS.200001"),
        (b'{"session_consistence": "True"}', "DBS.200001"),
        (b'{"session_consistence": 1}', "DBS.200001"),
        (b'{"session_consistence": "yes"}', "DBS.200001"),
        (b'{"session_consistence": "true", "consistence_mode": "strong"}', "DBS.200001"),
        (b'{"session_consistence": "true", "consistence_mode": 1}', "DBS.200001"),
    ],
)
def test_parse_change_refuses_bad_bodies(raw: bytes, code: str) -> None:
    """An empty body is DBS.200006; anything else invalid is DBS.200001, both at 400."""
    with pytest.raises(ApiError) as caught:
        parse_change(raw)
    assert (caught.value.status, caught.value.code) == (400, code)


# --- the backend -----------------------------------------------------------------------------------------


def test_backend_creates_a_job_and_refuses_a_second_change_on_the_instance(fleet: Fleet) -> None:
    """While a job is in flight on an instance, another change there is 409 DBS.200019."""
    backend = Backend(fleet)
    config = SimulatorConfig(job_duration=10.0)
    answer = change(backend, config, X, 100.0, session_consistence="false", consistence_mode="global")
    assert set(answer) == {"job_id"}
    with pytest.raises(ApiError) as caught:
        change(backend, config, Y, 105.0, session_consistence="true")
    assert (caught.value.status, caught.value.code) == (409, "DBS.200019")
    assert caught.value.message.startswith("Another operation is being performed")
    # another instance is free, and the first is free again once the job ends
    change(backend, config, "z" * 32 + "po01", 105.0, instance=I2, session_consistence="true")
    change(backend, config, Y, 110.0, session_consistence="false")


def test_busy_error_code_is_switchable(fleet: Fleet) -> None:
    """The 409 busy code can be any of the contract's retry codes."""
    backend = Backend(fleet)
    config = SimulatorConfig(job_duration=10.0, busy_error_code="DBS.212033")
    change(backend, config, X, 100.0, session_consistence="true")
    with pytest.raises(ApiError) as caught:
        change(backend, config, Y, 101.0, session_consistence="false")
    assert (caught.value.status, caught.value.code) == (409, "DBS.212033")


def test_same_instance_allow_runs_jobs_of_different_proxies_together(fleet: Fleet) -> None:
    """With same_instance="allow" other proxies of a busy instance change at once; the same proxy is 409."""
    backend = Backend(fleet)
    config = SimulatorConfig(job_duration=10.0, same_instance="allow")
    change(backend, config, X, 100.0, session_consistence="true")
    change(backend, config, Y, 101.0, session_consistence="false")
    with pytest.raises(ApiError):
        change(backend, config, X, 102.0, session_consistence="false", consistence_mode="global")
    assert fleet.modes(now=111.0)[(P, I1, Y)] == "eventual"


def test_same_instance_queue_makes_later_jobs_pending(fleet: Fleet) -> None:
    """With same_instance="queue" a change on a busy instance is accepted and waits Pending for its turn."""
    backend = Backend(fleet)
    config = SimulatorConfig(job_duration=10.0, same_instance="queue")
    change(backend, config, X, 100.0, session_consistence="true")
    second = change(backend, config, Y, 101.0, session_consistence="false", consistence_mode="global")
    job = fleet.jobs[str(second["job_id"])]
    assert job.status(105.0) == "Pending"
    assert job.status(115.0) == "Running"
    assert fleet.mode(P, I1, X, now=115.0) == "session"
    assert fleet.mode(P, I1, Y, now=115.0) == "session"
    assert fleet.mode(P, I1, Y, now=120.0) == "global"


@pytest.mark.parametrize(
    ("noop", "status", "answer"),
    [("nojob", 200, {}), ("null", 200, {"job_id": None})],
)
def test_noop_without_job(fleet: Fleet, noop: str, status: int, answer: dict[str, object]) -> None:
    """Asking for the current mode answers 200 without a job id when noop is "nojob" or "null"."""
    reply = Backend(fleet).change_consistency(
        SimulatorConfig(noop=noop), P, I1, X, body(session_consistence="false"), "application/json", 100.0
    )
    assert (reply.status, reply.body, reply.job) == (status, answer, None)


def test_noop_as_error_and_as_job(fleet: Fleet) -> None:
    """noop="error" refuses with 400 DBS.200001; noop="job" makes a normal job that changes nothing."""
    backend = Backend(fleet)
    with pytest.raises(ApiError) as caught:
        change(backend, SimulatorConfig(noop="error"), X, 100.0, session_consistence="false")
    assert (caught.value.status, caught.value.code) == (400, "DBS.200001")
    answer = change(backend, SimulatorConfig(noop="job", job_duration=1.0), X, 100.0, session_consistence="false")
    assert fleet.jobs[str(answer["job_id"])].status(101.0) == "Completed"
    assert fleet.mode(P, I1, X, now=101.0) == "eventual"


@pytest.mark.parametrize(
    ("value", "status", "code"),
    [("404", 404, "DBS.200002"), ("409", 409, "DBS.200932"), ("400", 400, "DBS.201028")],
)
def test_unknown_instance_answers_are_switchable(fleet: Fleet, value: str, status: int, code: str) -> None:
    """An unknown instance answers per the instance_not_found switch."""
    config = SimulatorConfig(instance_not_found=value)
    with pytest.raises(ApiError) as caught:
        change(Backend(fleet), config, X, 100.0, instance="nope", session_consistence="true")
    assert (caught.value.status, caught.value.code) == (status, code)


@pytest.mark.parametrize(("value", "status"), [("400", 400), ("404", 404)])
def test_unknown_proxy_answers_are_switchable(fleet: Fleet, value: str, status: int) -> None:
    """An unknown proxy of a known instance answers DBS.201028 at 400 (default) or 404."""
    with pytest.raises(ApiError) as caught:
        change(Backend(fleet), SimulatorConfig(proxy_not_found=value), "nope", 100.0, session_consistence="true")
    assert (caught.value.status, caught.value.code) == (status, "DBS.201028")


def test_fail_proxies_and_fail_rate_make_jobs_fail(fleet: Fleet) -> None:
    """Jobs of proxies in fail_proxies, or drawn by job_fail_rate, end Failed with a reason."""
    backend = Backend(fleet, job_fails=lambda rate: rate >= 1.0)
    answer = change(backend, SimulatorConfig(fail_proxies=frozenset({X})), X, 100.0, session_consistence="true")
    job = fleet.jobs[str(answer["job_id"])]
    assert job.status(102.0) == "Failed"
    assert job.fail_reason
    answer = change(backend, SimulatorConfig(job_fail_rate=1.0), Y, 102.0, session_consistence="false")
    assert fleet.jobs[str(answer["job_id"])].status(104.0) == "Failed"
    assert fleet.modes(now=104.0)[(P, I1, Y)] == "session"


def test_get_job_shape_and_visibility_delay(fleet: Fleet) -> None:
    """A job is not found during the visibility delay, then shows every GetJobInfoDetail field."""
    backend = Backend(fleet)
    config = SimulatorConfig(job_duration=10.0, job_visibility_delay=3.0)
    job_id = str(change(backend, config, X, 100.0, session_consistence="true")["job_id"])
    with pytest.raises(ApiError) as caught:
        backend.get_job(config, P, {"id": job_id}, 102.9)
    assert (caught.value.status, caught.value.code) == (404, "DBS.200002")
    shown = backend.get_job(config, P, {"id": job_id}, 105.0).body["job"]
    assert set(shown) == {
        "id",
        "name",
        "status",
        "created",
        "ended",
        "process",
        "instance",
        "entities",
        "fail_reason",
    }
    assert shown["name"] == "GaussDBforMySQLModifyProxyConsist"
    assert (shown["status"], shown["process"], shown["ended"]) == ("Running", "50%", "")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", shown["created"])
    assert shown["instance"]["id"] == I1
    done = backend.get_job(config, P, {"id": job_id}, 110.0).body["job"]
    assert (done["status"], done["process"]) == ("Completed", "")
    assert done["ended"]


@pytest.mark.parametrize(("value", "status", "code"), [("404", 404, "DBS.200002"), ("400", 400, "DBS.200001")])
def test_job_not_found_as_errors(fleet: Fleet, value: str, status: int, code: str) -> None:
    """An unknown job id is an error answer when job_not_found is "404" or "400"."""
    with pytest.raises(ApiError) as caught:
        Backend(fleet).get_job(SimulatorConfig(job_not_found=value), P, {"id": "no-such-job"}, 100.0)
    assert (caught.value.status, caught.value.code) == (status, code)


@pytest.mark.parametrize(("value", "answer"), [("empty", {"job": {}}), ("null", {"job": None})])
def test_job_not_found_as_empty_answers(fleet: Fleet, value: str, answer: object) -> None:
    """An unknown job id is a 200 with an empty or null job when job_not_found is "empty" or "null"."""
    reply = Backend(fleet).get_job(SimulatorConfig(job_not_found=value), P, {"id": "no-such-job"}, 100.0)
    assert (reply.status, reply.body) == (200, answer)


def test_get_job_of_another_project_is_not_found(fleet: Fleet) -> None:
    """A job is only visible under the project that created it."""
    backend = Backend(fleet)
    config = SimulatorConfig(job_not_found="empty")
    job_id = str(change(backend, config, X, 100.0, session_consistence="true")["job_id"])
    assert backend.get_job(config, "other", {"id": job_id}, 100.0).body == {"job": {}}


def test_get_job_without_id_is_a_parameter_error(fleet: Fleet) -> None:
    """/jobs without an id is 400 DBS.200001."""
    with pytest.raises(ApiError) as caught:
        Backend(fleet).get_job(SimulatorConfig(), P, {}, 100.0)
    assert (caught.value.status, caught.value.code) == (400, "DBS.200001")


def test_listing_pages_and_shows_the_mode(clock: FakeClock) -> None:
    """The listing pages by offset/limit in a stable order, has no total_count, and shows consistence_mode."""
    fleet = Fleet(clock=clock)
    ids = [f"{i:032x}po01" for i in range(25)]
    for proxy_id in ids:
        fleet.add_proxy(P, I1, proxy_id, "session")
    backend = Backend(fleet)
    config = SimulatorConfig(list_default_limit=10)
    first = backend.list_proxies(config, P, I1, {}, 100.0).body
    assert set(first) == {"proxy_list"}
    assert [e["proxy"]["pool_id"] for e in first["proxy_list"]] == ids[:10]
    last = backend.list_proxies(config, P, I1, {"offset": "20", "limit": "100"}, 100.0).body["proxy_list"]
    assert [e["proxy"]["pool_id"] for e in last] == ids[20:]
    assert backend.list_proxies(config, P, I1, {"offset": "25"}, 100.0).body == {"proxy_list": []}
    entry = first["proxy_list"][0]
    assert set(entry) == {"proxy", "master_node", "readonly_nodes", "htap_nodes"}
    assert entry["proxy"]["consistence_mode"] == "session"
    assert entry["proxy"]["status"] == "ACTIVE"


@pytest.mark.parametrize(
    "query",
    [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"offset": "-1"}, {"offset": ""}, {"limit": "1.5"}],
)
def test_listing_refuses_bad_paging(fleet: Fleet, query: dict[str, str]) -> None:
    """offset below 0, limit outside 1..100 or a non-integer is 400 DBS.200001."""
    with pytest.raises(ApiError) as caught:
        Backend(fleet).list_proxies(SimulatorConfig(), P, I1, query, 100.0)
    assert (caught.value.status, caught.value.code) == (400, "DBS.200001")


def test_proxy_status_during_a_job_is_switchable(fleet: Fleet) -> None:
    """status_during_job is shown as proxy.status while its job is in flight."""
    backend = Backend(fleet)
    config = SimulatorConfig(job_duration=10.0, status_during_job="MODIFYING")
    change(backend, config, X, 100.0, session_consistence="true")
    listed = {
        e["proxy"]["pool_id"]: e["proxy"]["status"]
        for e in backend.list_proxies(config, P, I1, {}, 101.0).body["proxy_list"]
    }
    assert listed == {X: "MODIFYING", Y: "ACTIVE"}


def test_put_needs_a_json_content_type(fleet: Fleet) -> None:
    """A PUT whose Content-Type is not application/json (parameters allowed) is refused, unless lenient."""
    backend = Backend(fleet)
    raw = body(session_consistence="true")
    with pytest.raises(ApiError):
        backend.change_consistency(SimulatorConfig(), P, I1, X, raw, "text/plain", 100.0)
    lenient = SimulatorConfig(require_json_content_type=False)
    assert backend.change_consistency(lenient, P, I1, X, raw, None, 100.0).status == 200
    assert (
        backend.change_consistency(
            SimulatorConfig(), P, I2, "z" * 32 + "po01", raw, "Application/JSON; charset=UTF-8", 100.0
        ).status
        == 200
    )


# --- seeding from a plan --------------------------------------------------------------------------------


def _plan(*targets: Target) -> Plan:
    return Plan(
        path="plan.yaml",
        name="t",
        digest="0" * 64,
        region=None,
        endpoint=None,
        project_id=P,
        limits=Limits(),
        retry=RetrySettings(),
        jobs=JobSettings(),
        targets=targets,
    )


def test_fleet_from_plan_seeds_named_and_all_proxies_deterministically() -> None:
    """Named proxies exist, an `all` instance gets 1-4 doc-shaped ids, and a seed always gives one fleet."""
    plan = _plan(Target(P, I1, X, "global"), Target(P, I2, ALL_PROXIES, "session"))
    fleet = fleet_from_plan(plan, seed=7)
    again = fleet_from_plan(plan, seed=7)
    assert fleet.modes() == again.modes()
    generated = generated_proxy_ids(I2, 7)
    assert 1 <= len(generated) <= 4
    assert all(re.fullmatch(r"[0-9a-f]{31,32}po01", proxy_id) for proxy_id in generated)
    assert set(fleet.modes()) == {(P, I1, X)} | {(P, I2, g) for g in generated}
    assert fleet.mode(P, I1, X) == initial_mode(X, 7)


def test_generated_fleets_cover_every_size_id_length_and_mode() -> None:
    """Across instances `all` gives 1-4 proxies, ids of 35 and 36 chars, and about a third of each mode."""
    sizes = {len(generated_proxy_ids(f"{i:032x}in07")) for i in range(50)}
    assert sizes == {1, 2, 3, 4}
    ids = [p for i in range(50) for p in generated_proxy_ids(f"{i:032x}in07")]
    assert {len(p) for p in ids} == {35, 36}
    modes = Counter(initial_mode(f"{i:032x}po01", seed=3) for i in range(900))
    assert set(modes) == set(MODES)
    assert all(250 <= n <= 350 for n in modes.values())


# --- faults, stats, config ------------------------------------------------------------------------------


def test_fault_decisions_are_reproducible_per_seed() -> None:
    """The same seed gives the same decisions; a different seed a different sequence."""
    faults = Faults(error_500=0.5, throttle_429=0.5, drop_after=0.5, seed=42)
    first = [FaultDecider(faults).decide("PUT") for _ in range(1)]
    run_a = FaultDecider(faults)
    run_b = FaultDecider(faults)
    seq_a = [run_a.decide("PUT") for _ in range(30)]
    assert seq_a == [run_b.decide("PUT") for _ in range(30)]
    assert seq_a[0] == first[0]
    other = FaultDecider(replace(faults, seed=43))
    assert seq_a != [other.decide("PUT") for _ in range(30)]


def test_certain_and_impossible_faults() -> None:
    """Probability 1 always fires, 0 never; drop_after only applies to PUTs."""
    decider = FaultDecider(Faults(error_500=1.0, drop_after=1.0))
    put, get = decider.decide("PUT"), decider.decide("GET")
    assert (put.error_500, put.drop_after, put.throttle_429) == (True, True, False)
    assert (get.error_500, get.drop_after) == (True, False)


def test_max_in_window_counts_the_busiest_sliding_window() -> None:
    """max_in_window is the largest number of arrivals within any half-open window of that length."""
    stats = Stats()
    for at, route in [
        (0.0, "get_job"),
        (0.5, "put_consistency"),
        (0.9, "get_job"),
        (1.0, "get_job"),
        (3.0, "x"),
    ]:
        stats.arrived(RequestRecord(at, "GET", route))
    assert stats.max_in_window(1.0) == 3
    assert stats.max_in_window(1.01) == 4
    assert stats.max_in_window(1.0, route="get_job") == 2
    assert stats.max_in_window(0.05) == 1
    assert Stats().max_in_window(1.0) == 0


def test_parse_faults_reads_a_cli_spec() -> None:
    """parse_faults reads NAME=VALUE pairs and refuses unknown names and bad numbers."""
    assert parse_faults("error_500=0.25, retry-after=none,seed=3") == Faults(error_500=0.25, retry_after=None, seed=3)
    assert parse_faults("") == Faults()
    with pytest.raises(ValueError, match="bad fault"):
        parse_faults("nope=1")
    with pytest.raises(ValueError, match="not a number"):
        parse_faults("latency=fast")


@pytest.mark.parametrize(
    "make",
    [
        lambda: Faults(error_500=1.5),
        lambda: Faults(latency=-1),
        lambda: SimulatorConfig(job_not_found="maybe"),
        lambda: SimulatorConfig(noop="skip"),
        lambda: SimulatorConfig(list_default_limit=0),
        lambda: SimulatorConfig(busy_error_code="DBS.1"),
        lambda: SimulatorConfig(tokens=frozenset({""})),
    ],
)
def test_invalid_settings_are_refused(make: object) -> None:
    """Out-of-range probabilities, unknown switch values and empty tokens raise ValueError."""
    with pytest.raises(ValueError, match="must be"):
        make()  # type: ignore[operator]


def test_public_names_are_pinned() -> None:
    """The package re-exports exactly its public API."""
    assert sorted(simulator.__all__) == sorted(
        [
            "HOSTILE_MODES", "JOB_NAME", "AccessKey", "AkSkAuth", "AnyOf", "ApiError", "Authenticator", "Faults", "Fleet",
            "GatewayError", "IamError", "IamUser", "Instance", "IssuedToken", "Job", "Lockout", "Proxy",
            "RequestRecord", "Simulator", "SimulatorAuth", "SimulatorConfig", "Stats", "TokenAuth",
            "TokenIssuer", "WireRequest", "authenticator_for", "fleet_from_plan", "generated_proxy_ids",
            "initial_mode", "parse_faults", "run_simulator", "simulator_auth_from_env",
        ]
    )  # fmt: skip
    assert all(hasattr(simulator, name) for name in simulator.__all__)
