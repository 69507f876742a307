"""The engine against a scripted fake API and a fake clock: retries, ordering, ambiguity, outcomes."""

from __future__ import annotations

import contextlib
import random
from collections import deque

from fakes import PROJECT, FakeApi, FakeClock, instance_id, make_plan, proxy_id

from orchestrator.api import Reply
from orchestrator.engine import Engine
from orchestrator.errors import TransportError
from orchestrator.plan import Target
from orchestrator.report import Outcome, TargetOutcome

I1, I2 = instance_id(1), instance_id(2)
A, B, C = proxy_id(1), proxy_id(2), proxy_id(3)


async def run(api: FakeApi, targets: list[Target], *, dry_run: bool = False, **plan_overrides: object):
    outcomes: list[TargetOutcome] = []
    clock = FakeClock()
    engine = Engine(
        api,
        make_plan(targets, **plan_overrides),
        on_outcome=outcomes.append,
        dry_run=dry_run,
        rng=random.Random(1),
        sleep=clock.sleep,
        clock=clock,
    )
    await engine.run()
    return {o.proxy_id: o for o in outcomes}, clock, engine


def by_proxy(outcomes: dict[str, TargetOutcome]) -> dict[str, str]:
    return {p: o.outcome.value for p, o in outcomes.items()}


async def test_changes_only_what_differs_and_records_job_ids() -> None:
    """Proxies not at their goal get one PUT each with the job id reported; the others are unchanged, unsent."""
    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "session"}, (PROJECT, I2): {C: "global"}})
    targets = [Target(PROJECT, I1, A, "session"), Target(PROJECT, I1, B, "session"), Target(PROJECT, I2, C, "eventual")]
    outcomes, _, _ = await run(api, targets)
    assert by_proxy(outcomes) == {A: "submitted", B: "unchanged", C: "submitted"}
    assert outcomes[A].job_id and outcomes[C].job_id and outcomes[B].job_id is None
    assert outcomes[A].mode_before == "eventual" and outcomes[A].mode_target == "session"
    assert sorted(p for r, p in api.calls if r == "put") == sorted([A, C])


async def test_one_listing_per_instance() -> None:
    """Observing the fleet costs one listing per instance, never one per proxy."""
    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "eventual", C: "eventual"}})
    targets = [Target(PROJECT, I1, p, "eventual") for p in (A, B, C)]
    await run(api, targets)
    assert api.routes() == ["list"]


async def test_listing_is_paged_until_a_short_page() -> None:
    """An instance with 250 proxies is read in pages of 100 at offsets 0, 100 and 200."""
    proxies = {proxy_id(n): "session" for n in range(250)}
    api = FakeApi({(PROJECT, I1): proxies})
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, "all", "session")])
    assert [p for r, p in api.calls if r == "list"] == [f"{I1}@0", f"{I1}@100", f"{I1}@200"]
    assert len(outcomes) == 250 and set(by_proxy(outcomes).values()) == {"unchanged"}


async def test_all_expands_to_every_listed_proxy() -> None:
    """proxy_id: all changes every proxy the listing shows that is not at the goal."""
    api = FakeApi({(PROJECT, I1): {A: "session", B: "global", C: "eventual"}})
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, "all", "global")])
    assert by_proxy(outcomes) == {A: "submitted", B: "unchanged", C: "submitted"}


async def test_500_is_retried_with_backoff_then_succeeds() -> None:
    """A 500 then a 200 gives `submitted` after 2 attempts, with one jittered backoff sleep."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.script["put"] = deque([Reply(500, {"error_code": "DBS.05000000", "error_msg": "server error."})])
    outcomes, clock, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    assert outcomes[A].outcome is Outcome.SUBMITTED and outcomes[A].attempts == 2
    assert len(clock.sleeps) == 1 and 0 <= clock.sleeps[0] <= 0.5


async def test_400_is_never_retried() -> None:
    """A 400 fails the target at once with the service's error code and message."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.script["put"] = deque([Reply(400, {"error_code": "DBS.200001", "error_msg": "Parameter error."})])
    outcomes, clock, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    o = outcomes[A]
    assert (o.outcome, o.attempts, o.http_status, o.error_code, o.error_msg) == (
        Outcome.FAILED,
        1,
        400,
        "DBS.200001",
        "Parameter error.",
    )
    assert clock.sleeps == [] and api.routes().count("put") == 1


async def test_retries_stop_at_the_attempt_budget() -> None:
    """A service that always answers 503 gets exactly `attempts` PUTs, then the target fails."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.script["put"] = deque([Reply(503, {"error_code": "APIGW.0613"})] * 10)
    outcomes, clock, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    assert outcomes[A].outcome is Outcome.FAILED and outcomes[A].attempts == 4
    assert api.routes().count("put") == 4 and len(clock.sleeps) == 3


async def test_429_waits_exactly_retry_after() -> None:
    """A 429 with Retry-After: 3 is retried after exactly 3 seconds."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.script["put"] = deque([Reply(429, {"error_code": "APIGW.0308"}, retry_after="3")])
    outcomes, clock, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    assert outcomes[A].outcome is Outcome.SUBMITTED and clock.sleeps == [3.0]


async def test_busy_instance_409_is_retried() -> None:
    """409 DBS.200019 (another operation running) is waited out and retried."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.script["put"] = deque([Reply(409, {"error_code": "DBS.200019", "error_msg": "busy"})] * 2)
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    assert outcomes[A].outcome is Outcome.SUBMITTED and outcomes[A].attempts == 3


async def test_second_proxy_of_an_instance_waits_for_the_first_job() -> None:
    """On one instance, the next PUT is sent only after the previous job left Running."""
    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "eventual"}}, job_polls=3)
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session"), Target(PROJECT, I1, B, "session")])
    assert by_proxy(outcomes) == {A: "submitted", B: "submitted"}
    assert api.routes() == ["list", "put", "job", "job", "job", "put"]


async def test_instances_proceed_in_parallel() -> None:
    """Chains on different instances do not wait for each other's jobs."""
    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "eventual"}, (PROJECT, I2): {C: "eventual"}}, job_polls=3)
    targets = [Target(PROJECT, I1, A, "session"), Target(PROJECT, I1, B, "session"), Target(PROJECT, I2, C, "session")]
    await run(api, targets)
    puts = [p for r, p in api.calls if r == "put"]
    assert puts.index(C) < puts.index(B)


async def test_per_instance_two_runs_two_lanes() -> None:
    """With per_instance: 2, two proxies of one instance are changed before any job is polled."""
    from orchestrator.plan import Limits, Rate

    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "eventual", C: "eventual"}}, job_polls=2)
    targets = [Target(PROJECT, I1, p, "session") for p in (A, B, C)]
    await run(api, targets, limits=Limits(Rate(1000, 1.0), 10, 2))
    assert api.routes()[:3] == ["list", "put", "put"]


async def test_job_not_visible_yet_is_tolerated_within_the_grace() -> None:
    """A job that is "not found" for its first polls is polled again until it shows up."""
    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "eventual"}})
    api.script["job"] = deque([Reply(404, {"error_code": "DBS.200002"}), Reply(200, {"job": {}})])
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session"), Target(PROJECT, I1, B, "session")])
    assert by_proxy(outcomes) == {A: "submitted", B: "submitted"}
    assert api.routes() == ["list", "put", "job", "job", "job", "put"]


async def test_dropped_answer_after_the_change_is_not_resent() -> None:
    """A PUT whose answer was lost but that was applied is settled from the listing, without a second PUT."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}}, job_polls=0, apply_before_drop=True)
    api.script["put"] = deque([TransportError("dropped", "ServerDisconnectedError", sent=True, wire=1)])
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    o = outcomes[A]
    assert o.outcome is Outcome.SUBMITTED and o.job_id is None and o.note and "lost" in o.note
    assert api.routes() == ["list", "put", "list"]


async def test_dropped_answer_before_the_change_is_resent_after_a_check() -> None:
    """A PUT lost before the server acted is sent again, but only after the listing shows the old mode."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.script["put"] = deque([TransportError("dropped", "ServerDisconnectedError", sent=True, wire=1)])
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    assert outcomes[A].outcome is Outcome.SUBMITTED and outcomes[A].job_id
    assert api.routes() == ["list", "put", "list", "put"]


async def test_connect_error_is_retried_without_a_check() -> None:
    """A PUT that never connected did not happen: it is simply retried."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.script["put"] = deque([TransportError("connect", "refused", sent=False)])
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    assert outcomes[A].outcome is Outcome.SUBMITTED
    assert api.routes() == ["list", "put", "put"]


async def test_unreadable_state_after_a_lost_answer_is_unknown() -> None:
    """If the answer was lost and the listing then fails, the outcome is `unknown`, never re-sent."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.script["put"] = deque([TransportError("timeout", "no answer", sent=True, wire=1)])
    api.script["list"] = deque(
        [
            Reply(200, {"proxy_list": [{"proxy": {"pool_id": A, "consistence_mode": "eventual"}}]}),
            Reply(403, {"error_code": "APIGW.0302"}),
        ]
    )
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    assert outcomes[A].outcome is Outcome.UNKNOWN
    assert api.routes().count("put") == 1


async def test_listing_failure_fails_every_target_of_that_instance() -> None:
    """An instance that cannot be listed fails all its targets with the listing's error; others proceed."""
    api = FakeApi({(PROJECT, I2): {C: "eventual"}})
    targets = [
        Target(PROJECT, I1, A, "session"),
        Target(PROJECT, I1, "all", "session"),
        Target(PROJECT, I2, C, "session"),
    ]
    outcomes_list: list[TargetOutcome] = []
    engine = Engine(api, make_plan(targets), on_outcome=outcomes_list.append, sleep=FakeClock().sleep)
    await engine.run()
    failed = [o for o in outcomes_list if o.instance_id == I1]
    assert [(o.outcome, o.http_status, o.error_code) for o in failed] == [(Outcome.FAILED, 404, "listing_failed")] * 2
    assert all("HTTP 404 DBS.200002: The DB instance does not exist." in (o.error_msg or "") for o in failed)
    assert all(o.mode_before is None and o.wire_attempts == 1 for o in failed)
    assert [o.outcome for o in outcomes_list if o.instance_id == I2] == [Outcome.SUBMITTED]


async def test_missing_proxy_fails_without_a_put() -> None:
    """A proxy the listing does not show fails as proxy_not_found and nothing is sent for it."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, B, "session")])
    assert outcomes[B].outcome is Outcome.FAILED and outcomes[B].error_code == "proxy_not_found"
    assert "put" not in api.routes()


async def test_200_without_job_id_is_a_recorded_failure() -> None:
    """A 200 whose body has no job_id is a failure naming what was wrong, not a crash."""
    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "eventual"}})
    api.script["put"] = deque([Reply(200, {}), Reply(200, None, excerpt="<html>")])
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session"), Target(PROJECT, I1, B, "session")])
    assert [outcomes[p].error_code for p in (A, B)] == ["no_job_id", "no_job_id"]
    assert "without job_id" in (outcomes[A].error_msg or "") and "no JSON object" in (outcomes[B].error_msg or "")


async def test_html_error_page_is_recorded_with_an_excerpt() -> None:
    """A non-JSON error body (a gateway's HTML page) is recorded with its status and an excerpt."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.script["put"] = deque([Reply(403, None, excerpt="<html><body>Forbidden</body></html>")])
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    assert outcomes[A].http_status == 403 and "Forbidden" in (outcomes[A].error_msg or "")


async def test_dry_run_sends_no_put() -> None:
    """A dry run lists and reports would_change, and never sends a PUT."""
    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "session"}})
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, "all", "session")], dry_run=True)
    assert by_proxy(outcomes) == {A: "would_change", B: "unchanged"}
    assert "put" not in api.routes()


async def test_stop_leaves_the_rest_not_started() -> None:
    """After stop(), targets not yet started settle as not_started and get no PUT."""
    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "eventual", C: "eventual"}})
    outcomes: list[TargetOutcome] = []
    engine: Engine

    def on_outcome(o: TargetOutcome) -> None:
        outcomes.append(o)
        engine.stop("test stop")

    clock = FakeClock()
    engine = Engine(
        api,
        make_plan([Target(PROJECT, I1, p, "session") for p in (A, B, C)]),
        on_outcome=on_outcome,
        sleep=clock.sleep,
        clock=clock,
    )
    await engine.run()
    assert [o.outcome for o in outcomes] == [Outcome.SUBMITTED, Outcome.NOT_STARTED, Outcome.NOT_STARTED]
    assert api.routes().count("put") == 1 and outcomes[1].note == "test stop"


async def test_a_refused_credential_stops_the_run() -> None:
    """A final 401 stops dispatching: the target fails, the rest are not started, the reason is kept."""
    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "eventual", C: "eventual"}})
    api.script["put"] = deque([Reply(401, {"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication"})])
    outcomes, _, engine = await run(api, [Target(PROJECT, I1, p, "session") for p in (A, B, C)])
    assert [outcomes[p].outcome for p in (A, B, C)] == [Outcome.FAILED, Outcome.NOT_STARTED, Outcome.NOT_STARTED]
    assert engine.auth_failure and "APIGW.0301" in engine.auth_failure
    assert api.routes().count("put") == 1


async def test_credentials_that_cannot_be_obtained_stop_the_run() -> None:
    """An AuthError while authorizing (e.g. IAM refused the login) stops the run; since nothing was sent,
    every target is not_started, with the reason in its note."""
    from orchestrator.errors import AuthError

    api = FakeApi({(PROJECT, I1): {A: "eventual"}, (PROJECT, I2): {C: "eventual"}})
    api.script["list"] = deque([AuthError("IAM refused the password login")])  # type: ignore[list-item]
    outcomes, _, engine = await run(api, [Target(PROJECT, I1, A, "session"), Target(PROJECT, I2, C, "session")])
    assert engine.auth_failure == "IAM refused the password login"
    assert outcomes[A].outcome is Outcome.NOT_STARTED and "IAM refused" in (outcomes[A].note or "")
    assert outcomes[C].outcome is Outcome.NOT_STARTED
    assert "put" not in api.routes()


async def test_failure_budget_is_never_overshot_under_high_concurrency() -> None:
    """Budget 3, concurrency 50, 200 targets on 200 instances, every change fails: exactly 3 failures."""
    from orchestrator.budget import FailureBudget
    from orchestrator.plan import Limits, Rate, RetrySettings, StopSettings

    fleet = {(PROJECT, instance_id(n)): {proxy_id(n): "eventual"} for n in range(200)}
    api = FakeApi(fleet)
    api.script["put"] = deque([Reply(500, {"error_code": "DBS.05000000"})] * 1000)
    targets = [Target(PROJECT, instance_id(n), proxy_id(n), "session") for n in range(200)]
    plan = make_plan(
        targets, limits=Limits(Rate(10_000, 1.0), 50, 1), retry=RetrySettings(1, 0.1, 1.0, 5.0), stop=StopSettings(3)
    )
    outcomes: list[TargetOutcome] = []
    clock = FakeClock()
    engine = Engine(
        api, plan, on_outcome=outcomes.append, budget=FailureBudget(plan.stop, 200), sleep=clock.sleep, clock=clock
    )
    await engine.run()
    counts = {o: sum(1 for x in outcomes if x.outcome is o) for o in Outcome}
    assert counts[Outcome.FAILED] == 3 and counts[Outcome.NOT_STARTED] == 197
    assert api.routes().count("put") == 3 and engine.stop_kind == "budget"
    assert len(outcomes) == 200


async def test_drifted_targets_are_skipped_and_the_rest_proceed() -> None:
    """A proxy whose mode differs from what the approved preview observed is `drifted`, nothing sent."""
    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "global"}})
    approved = {(PROJECT, I1, A): "eventual", (PROJECT, I1, B): "eventual"}
    outcomes: list[TargetOutcome] = []
    engine = Engine(
        api,
        make_plan([Target(PROJECT, I1, A, "session"), Target(PROJECT, I1, B, "session")]),
        on_outcome=outcomes.append,
        approved=approved,
        sleep=FakeClock().sleep,
    )
    await engine.run()
    by = {o.proxy_id: o for o in outcomes}
    assert by[A].outcome is Outcome.SUBMITTED
    assert by[B].outcome is Outcome.DRIFTED and "eventual in the approved preview, is global now" in (by[B].note or "")
    assert [p for r, p in api.calls if r == "put"] == [A]


async def test_resume_skips_what_is_done_without_listing() -> None:
    """Targets settled by an earlier run are neither listed for nor sent nor reported again."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}, (PROJECT, I2): {C: "eventual"}})
    outcomes: list[TargetOutcome] = []
    engine = Engine(
        api,
        make_plan([Target(PROJECT, I1, A, "session"), Target(PROJECT, I2, C, "session")]),
        on_outcome=outcomes.append,
        skip=frozenset({(PROJECT, I1, A)}),
        sleep=FakeClock().sleep,
    )
    await engine.run()
    assert [o.proxy_id for o in outcomes] == [C] and engine.skipped == 1
    assert [call for call in api.calls if call[0] != "jobs"] == [("list", f"{I2}@0"), ("put", C)]


async def test_cancelled_run_reports_every_target_once() -> None:
    """Cancelling a run mid-flight leaves one line per target: unknown for a PUT on the wire, not_started else."""
    import asyncio

    api = FakeApi({(PROJECT, I1): {A: "eventual"}, (PROJECT, I2): {B: "eventual", C: "eventual"}})
    put_started = asyncio.Event()
    never = asyncio.Event()

    async def hanging_put(*args: object, admitted=lambda: None) -> Reply:  # type: ignore[no-untyped-def]
        admitted()  # the governor let it through: from now on it may be on the wire
        put_started.set()
        await never.wait()
        raise AssertionError("unreachable")

    api.change_consistency = hanging_put  # type: ignore[method-assign]
    outcomes: list[TargetOutcome] = []
    engine = Engine(
        api,
        make_plan(
            [Target(PROJECT, I1, A, "session"), Target(PROJECT, I2, B, "session"), Target(PROJECT, I2, C, "session")]
        ),
        on_outcome=outcomes.append,
    )
    task = asyncio.create_task(engine.run())
    await put_started.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    by = {o.proxy_id: o.outcome for o in outcomes}
    assert len(outcomes) == 3 and set(by) == {A, B, C}
    assert by[A] is Outcome.UNKNOWN and by[B] is Outcome.UNKNOWN and by[C] is Outcome.NOT_STARTED


def running_jobs(*jobs: tuple[str, str]) -> Reply:
    items = [
        {
            "job_id": job_id,
            "instance_id": instance,
            "job_name": "GaussDBforMySQLModifyProxyConsist",
            "status": "Running",
        }
        for job_id, instance in jobs
    ]
    return Reply(200, {"jobs": items, "total_count": len(items)})


async def test_a_job_left_running_by_an_earlier_run_is_waited_for_before_listing() -> None:
    """An instance with a consistency job still running (say, from a killed run) is listed only after it ends."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}, (PROJECT, I2): {C: "eventual"}})
    api.jobs["old-job"] = [2, (PROJECT, I1, A), "session"]  # two polls to completion, then A is at its goal
    api.script["jobs"] = deque([running_jobs(("old-job", I1)), running_jobs()])
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session"), Target(PROJECT, I2, C, "session")])
    assert outcomes[A].outcome is Outcome.UNCHANGED and outcomes[C].outcome is Outcome.SUBMITTED
    i1 = [call for call in api.calls if call[1] in ("old-job", f"{I1}@0")]
    assert i1 == [("job", "old-job"), ("job", "old-job"), ("list", f"{I1}@0")]
    assert [p for r, p in api.calls if r == "put"] == [C]


async def test_running_jobs_that_cannot_be_listed_leave_the_project_unchanged() -> None:
    """If /immediate-jobs is refused (403), a job left running there cannot be ruled out: the project's targets
    fail as running_jobs_unknown with the cause, nothing is listed or sent for them; other projects proceed."""
    other = "0123456789abcdef0123456789abcdef"
    api = FakeApi({(PROJECT, I1): {A: "eventual"}, (other, I2): {C: "eventual"}})
    api.script["jobs"] = deque([Reply(200, {"jobs": [], "total_count": 0})] * 2)  # `other` sorts first
    api.script["jobs"].append(Reply(403, {"error_code": "APIGW.0302", "error_msg": "no permission"}))
    outcomes, _, engine = await run(api, [Target(PROJECT, I1, A, "session"), Target(other, I2, C, "session")])
    assert (outcomes[A].outcome, outcomes[A].error_code) == (Outcome.FAILED, "running_jobs_unknown")
    assert "HTTP 403 APIGW.0302: no permission" in (outcomes[A].error_msg or "")
    assert outcomes[A].mode_before is None and outcomes[A].wire_attempts == 0
    assert outcomes[C].outcome is Outcome.SUBMITTED
    assert [call for call in api.calls if call[0] != "jobs"] == [("list", f"{I2}@0"), ("put", C)]
    assert engine.stop_kind is None


async def test_the_running_jobs_check_is_retried_like_any_call() -> None:
    """A 500, a 429 and a timeout on /immediate-jobs are retried with backoff; the job then found is waited for."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.jobs["old-job"] = [1, (PROJECT, I1, A), "eventual"]
    api.script["jobs"] = deque(
        [
            Reply(500, {"error_code": "DBS.05000000"}),
            Reply(429, {"error_code": "APIGW.0308"}, retry_after="2"),
            TransportError("timeout", "no answer within 5s", sent=True),
            running_jobs(("old-job", I1)),
            running_jobs(),
        ]
    )
    outcomes, clock, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    assert outcomes[A].outcome is Outcome.SUBMITTED
    assert api.routes(with_job_lists=True)[:6] == ["jobs"] * 5 + ["job"] and 2.0 in clock.sleeps


async def test_running_jobs_still_unlistable_after_retries_change_nothing() -> None:
    """A listing of running jobs that keeps failing (500 at every attempt) fails the targets; nothing is sent."""
    api = FakeApi({(PROJECT, I1): {A: "eventual", B: "eventual"}})
    api.script["jobs"] = deque([Reply(500, {"error_code": "DBS.05000000", "error_msg": "server error."})] * 4)
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session"), Target(PROJECT, I1, B, "session")])
    assert {o.error_code for o in outcomes.values()} == {"running_jobs_unknown"} and len(outcomes) == 2
    assert "HTTP 500 DBS.05000000: server error." in (outcomes[A].error_msg or "")
    assert api.routes() == [] and api.routes(with_job_lists=True) == ["jobs"] * 4


async def test_a_lost_answer_is_unknown_when_running_jobs_cannot_be_listed() -> None:
    """After a PUT's answer was lost, a job (ours) may still run; if /immediate-jobs cannot say, the outcome is
    unknown: never a re-send on a listing that may not show the job's effect yet."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.script["put"] = deque([TransportError("dropped", "connection reset", sent=True)])
    api.script["jobs"] = deque([running_jobs(), running_jobs(), Reply(403, {"error_code": "APIGW.0302"})])
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    assert (outcomes[A].outcome, outcomes[A].error_code) == (Outcome.UNKNOWN, "outcome_unknown")
    assert api.routes().count("put") == 1


async def test_running_jobs_are_paged_when_offset_counts_pages() -> None:
    """If offset counts pages rather than records, the check notices the repeated page and pages by number."""
    from orchestrator.calls import Caller, CallStats
    from orchestrator.jobs import JobWatcher
    from orchestrator.plan import JobSettings, RetrySettings

    first = [(f"j{n}", instance_id(n)) for n in range(50)]
    second = [(f"j{n}", instance_id(n)) for n in range(50, 60)]
    api = FakeApi({})
    answers = [running_jobs(*first), running_jobs(*first), running_jobs(*second)]
    answers = [Reply(a.status, {**a.body, "total_count": 60}) for a in answers]
    api.script["jobs"] = deque([answers[0], answers[1], answers[2], Reply(200, {"jobs": [], "total_count": 0})])
    caller = Caller(RetrySettings(), stats=CallStats(), is_stopping=lambda: False, on_auth_failure=lambda d: None)
    running = await JobWatcher(api, caller, JobSettings()).running(PROJECT)
    assert sum(len(ids) for ids in running.by_instance.values()) == 60 and running.problem is None


async def test_a_listing_lost_in_transport_fails_as_listing_failed_with_the_transport_kind() -> None:
    """A listing whose every attempt timed out: `listing_failed`, the transport kind and detail in error_msg."""
    api = FakeApi({(PROJECT, I1): {A: "eventual"}})
    api.script["list"] = deque([TransportError("timeout", "no answer within 5s", sent=True)] * 4)
    outcomes, _, _ = await run(api, [Target(PROJECT, I1, A, "session")])
    o = outcomes[A]
    assert (o.outcome, o.http_status, o.error_code, o.mode_before) == (Outcome.FAILED, None, "listing_failed", None)
    assert "transport.timeout: no answer within 5s" in (o.error_msg or "") and o.attempts == 4
    assert "put" not in api.routes()


async def test_a_listing_outage_does_not_trip_the_budget_and_its_stop_reason_says_what_it_counts() -> None:
    """Failed listings (nothing sent) are not budget failures; when failed changes do spend it, the stop reason
    says that it counted changes, so "1 failures" beside many listing_failed targets is no contradiction."""
    from orchestrator.budget import FailureBudget
    from orchestrator.plan import StopSettings

    instances = [instance_id(n) for n in range(10, 15)]
    fleet = {(PROJECT, i): {proxy_id(n): "eventual"} for n, i in enumerate(instances)}
    targets = [Target(PROJECT, i, proxy_id(n), "session") for n, i in enumerate(instances)]
    api = FakeApi(fleet)
    api.script["list"] = deque([Reply(404, {"error_code": "DBS.200002", "error_msg": "gone"})] * 3)
    plan = make_plan(targets, stop=StopSettings(1))
    lines: list[TargetOutcome] = []
    engine = Engine(api, plan, on_outcome=lines.append, budget=FailureBudget(plan.stop, 5), sleep=FakeClock().sleep)
    await engine.run()
    assert [o.error_code for o in lines].count("listing_failed") == 3 and engine.stop_kind is None

    api = FakeApi(fleet)
    api.script["list"] = deque([Reply(404, {"error_code": "DBS.200002", "error_msg": "gone"})] * 3)
    api.script["put"] = deque([Reply(400, {"error_code": "DBS.280343", "error_msg": "refused"})] * 2)
    lines = []
    engine = Engine(api, plan, on_outcome=lines.append, budget=FailureBudget(plan.stop, 5), sleep=FakeClock().sleep)
    await engine.run()
    assert engine.stop_kind == "budget" and engine.stop_reason is not None
    assert engine.stop_reason.startswith("failure budget spent: 1 failures, 1 allowed by stop.max_failures 1")
    assert "changes" in engine.stop_reason and "listing_failed" in engine.stop_reason
