"""Hostile answers from the service (`SimulatorConfig.hostile`): every one recorded precisely, none hangs a run.

The engine and the real HTTP edge run against the simulator over loopback. Each run is wrapped in a generous
`asyncio.wait_for` only as a guard against a hang (a hang fails the test instead of stalling CI); nothing here
asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from clitools import SimulatorThread, cli, targets_of
from fakes import PROJECT, instance_id, make_plan, proxy_id

from orchestrator.api import MAX_BODY_BYTES, HttpApi
from orchestrator.auth import StaticToken
from orchestrator.engine import Engine
from orchestrator.governor import Governor
from orchestrator.plan import JobSettings, Limits, Plan, Rate, RetrySettings, Target
from orchestrator.report import Outcome, TargetOutcome
from orchestrator.simulator import HOSTILE_MODES, Fleet, Simulator, SimulatorConfig

TOKEN = "MIIhostile-token-0123456789abcdef"
INSTANCE = instance_id(7)
PROXY = proxy_id(7)
RETRY = RetrySettings(attempts=3, base_delay=0.01, max_delay=0.05, timeout=1.0)
JOBS = JobSettings(poll_interval=0.02, timeout=10.0, visibility_grace=1.0)
HANG_GUARD = 60.0  # seconds: far beyond attempts × timeout; only there to turn a hang into a failure
TOO_BIG = f"response body larger than {MAX_BODY_BYTES} bytes"


@dataclass
class Run:
    outcomes: list[TargetOutcome]
    simulator: Simulator
    puts_sent: int
    fleet_mode: str | None = None


def one_proxy_plan() -> Plan:
    return make_plan(
        [Target(PROJECT, INSTANCE, PROXY, "session")], retry=RETRY, jobs=JOBS, limits=Limits(Rate(1000, 1.0), 4, 1)
    )


async def run_hostile(mode: str, routes: set[str], **config: object) -> Run:
    """Apply a one-proxy plan (eventual -> session) against a simulator answering `routes` with `mode`."""
    fleet = Fleet()
    fleet.add_proxy(PROJECT, INSTANCE, PROXY, "eventual")
    settings = SimulatorConfig(
        tokens=frozenset({TOKEN}),
        job_duration=0.05,
        hostile=mode,
        hostile_routes=frozenset(routes),
        hostile_drip_seconds=1.0,  # a byte per second
        **config,  # type: ignore[arg-type]
    )
    plan = one_proxy_plan()
    outcomes: list[TargetOutcome] = []
    async with Simulator(fleet, settings) as sim:
        governor = Governor(plan.limits.rate, plan.limits.concurrency)
        async with HttpApi(sim.url, StaticToken(TOKEN), governor, timeout=plan.retry.timeout) as api:
            engine = Engine(api, plan, on_outcome=outcomes.append, rng=random.Random(7))
            await asyncio.wait_for(engine.run(), HANG_GUARD)
            puts = api.wire.by_method.get("PUT", 0)
        await asyncio.sleep(0.1)  # let a job started by a mangled answer finish
        return Run(outcomes, sim, puts, fleet.mode(PROJECT, INSTANCE, PROXY))


def test_every_hostile_mode_is_covered_here() -> None:
    """The modes this file tests are exactly the simulator's hostile modes."""
    covered = {*PUT_EXPECTED, "truncated_json", "redirect_other_host"}
    assert covered == HOSTILE_MODES


def test_an_unknown_hostile_mode_is_refused() -> None:
    """A misspelt mode or route is a ValueError, not a silently normal simulator."""
    with pytest.raises(ValueError, match="hostile must be one of"):
        SimulatorConfig(hostile="gzip-bomb")
    with pytest.raises(ValueError, match="hostile_routes must be among"):
        SimulatorConfig(hostile="html_error", hostile_routes=frozenset({"put"}))


# --- the PUT's answer -----------------------------------------------------------------------------------------
# mode -> (outcome, http_status, error_code, a piece of error_msg or note, jobs the service created)
PUT_EXPECTED: dict[str, tuple[Outcome, int | None, str | None, str, int]] = {
    # a broken gateway answered instead of the service: nothing applied, retried (502), then failed
    "html_error": (Outcome.FAILED, 502, None, "non-JSON error body: <html>", 0),
    # the change was applied but its answer is too big to read: unknown, never a blind re-send
    "gzip_bomb": (Outcome.UNKNOWN, None, "transport.protocol", TOO_BIG, 1),
    "huge_body": (Outcome.UNKNOWN, None, "transport.protocol", TOO_BIG, 1),
    # JSON under the wrong label is still the service's JSON
    "wrong_content_type": (Outcome.SUBMITTED, 200, None, "", 1),
    # the answer was lost mid-way: the listing shows the change applied, so it is settled without a re-send
    "slow_drip": (Outcome.SUBMITTED, None, None, "answer was lost", 1),
    "reset_mid_body": (Outcome.SUBMITTED, None, None, "answer was lost", 1),
}


@pytest.mark.parametrize("mode", sorted(PUT_EXPECTED))
async def test_a_hostile_put_answer_is_recorded_precisely(mode: str) -> None:
    """Each hostile PUT answer settles the target with the status, code and message (or note) that say why."""
    outcome, status, code, text, jobs = PUT_EXPECTED[mode]
    run = await run_hostile(mode, {"put_consistency"})
    (result,) = run.outcomes
    assert (result.outcome, result.http_status, result.error_code) == (outcome, status, code)
    assert text in ((result.error_msg or "") + (result.note or ""))
    assert run.simulator.stats.jobs_created == jobs
    assert all(n == 1 for n in run.simulator.stats.jobs_by_proxy.values())  # never changed twice
    if outcome is Outcome.SUBMITTED and status == 200:
        assert result.job_id is not None
    if jobs == 0:
        assert run.fleet_mode == "eventual"


async def test_a_slow_drip_put_is_cut_at_the_timeout_and_not_sent_again() -> None:
    """A body dripping a byte per second is abandoned at the per-attempt timeout; the PUT is sent once."""
    run = await run_hostile("slow_drip", {"put_consistency"})
    assert run.puts_sent == 1
    assert run.simulator.stats.count(route="put_consistency") == 1


async def test_a_gzip_bomb_is_not_inflated_in_full() -> None:
    """A 64 MiB gzip bomb stops at the body cap: the client reads at most about 1 MiB of it, then gives up."""
    run = await run_hostile("gzip_bomb", {"put_consistency"})
    (result,) = run.outcomes
    assert result.error_msg == TOO_BIG


async def test_a_put_answered_200_with_truncated_json_is_not_reported_failed() -> None:
    """A 2xx to a PUT means the service accepted the change: even if the body is unreadable, `failed`
    ("definitely not changed by us") would be wrong; the listing can tell `submitted`, else `unknown`."""
    run = await run_hostile("truncated_json", {"put_consistency"})
    (result,) = run.outcomes
    assert run.simulator.stats.jobs_created == 1  # the service did accept it
    assert result.outcome in (Outcome.SUBMITTED, Outcome.UNKNOWN), result


# --- the listing's answer -------------------------------------------------------------------------------------
LISTING_EXPECTED: dict[str, tuple[int | None, str, str]] = {
    "html_error": (502, "listing_failed", "non-JSON error body: <html>"),
    "gzip_bomb": (None, "listing_failed", f"transport.protocol: {TOO_BIG}"),
    "huge_body": (None, "listing_failed", f"transport.protocol: {TOO_BIG}"),
    "slow_drip": (None, "listing_failed", "transport.timeout: no answer within 1s"),
    "reset_mid_body": (None, "listing_failed", "Response payload is not completed"),
}


@pytest.mark.parametrize("mode", sorted(LISTING_EXPECTED))
async def test_a_hostile_listing_fails_its_targets_precisely_and_sends_no_put(mode: str) -> None:
    """A listing that cannot be read fails the instance's targets with the reason, and nothing is changed."""
    status, code, text = LISTING_EXPECTED[mode]
    run = await run_hostile(mode, {"list_proxies"})
    (result,) = run.outcomes
    assert (result.outcome, result.http_status, result.error_code) == (Outcome.FAILED, status, code)
    assert text in (result.error_msg or "")
    assert run.puts_sent == 0 and run.simulator.stats.count(route="put_consistency") == 0


async def test_a_listing_with_truncated_json_says_it_was_not_json() -> None:
    """A 200 listing whose body is cut mid-JSON is reported as unreadable JSON (with an excerpt), not as a
    JSON document that merely lacks `proxy_list`."""
    run = await run_hostile("truncated_json", {"list_proxies"})
    (result,) = run.outcomes
    assert (result.outcome, result.error_code) == (Outcome.FAILED, "listing_failed")
    assert "JSON" in (result.error_msg or "") and "proxy_list" not in (result.error_msg or ""), result.error_msg


# --- redirects ------------------------------------------------------------------------------------------------
@dataclass
class OtherHost:
    url: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
async def other_host() -> AsyncIterator[OtherHost]:
    """A second server on loopback, the redirect's target: it records every request it gets."""
    seen = OtherHost()

    async def record(request: web.BaseRequest) -> web.Response:
        seen.requests.append((request.method, request.path_qs, dict(request.headers)))
        return web.json_response({"job_id": "stolen"})

    runner = web.ServerRunner(web.Server(record))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    seen.url = f"http://{host}:{port}"
    try:
        yield seen
    finally:
        await runner.cleanup()


ALL_ROUTES = {"put_consistency", "list_proxies", "get_job", "list_jobs"}


async def test_a_redirect_to_another_host_is_never_followed(other_host: OtherHost) -> None:
    """307s to another host on every route: that host gets no request (so never the token), nothing changes."""
    run = await run_hostile("redirect_other_host", ALL_ROUTES, hostile_redirect_to=other_host.url)
    assert other_host.requests == []
    (result,) = run.outcomes
    assert (result.outcome, result.http_status) == (Outcome.FAILED, 307)
    assert run.simulator.stats.jobs_created == 0 and run.fleet_mode == "eventual"


async def test_a_redirected_put_is_recorded_with_where_it_pointed(other_host: OtherHost) -> None:
    """A 307 to the PUT is recorded with a message saying it was a redirect (and to where), not left blank."""
    run = await run_hostile("redirect_other_host", {"put_consistency"}, hostile_redirect_to=other_host.url)
    (result,) = run.outcomes
    assert (result.outcome, result.http_status) == (Outcome.FAILED, 307)
    message = result.error_msg or ""
    assert "redirect" in message.lower() or other_host.url in message, result


# --- through the CLI: the report records it, stderr carries no traceback and no secret ---------------------
CLI_PLAN = f"""\
version: 1
endpoint: http://127.0.0.1:1
project_id: {PROJECT}
retry: {{attempts: 2, base_delay: 10ms, max_delay: 50ms, timeout: 1s}}
jobs: {{poll_interval: 20ms, timeout: 10s, visibility_grace: 1s}}
targets:
  - {{instance_id: {INSTANCE}, proxy_id: {PROXY}, mode: session}}
"""


@pytest.mark.parametrize(
    ("mode", "outcome", "code"),
    [
        ("html_error", "failed", None),
        ("gzip_bomb", "unknown", "transport.protocol"),
        ("reset_mid_body", "submitted", None),
        ("slow_drip", "submitted", None),
    ],
)
def test_the_cli_reports_a_hostile_answer_without_a_traceback(
    tmp_path: Path, mode: str, outcome: str, code: str | None
) -> None:
    """`orchestrator apply` against a hostile service writes the target's line and run_finished, exits 0 or 3,
    and its output has neither a traceback nor the token."""
    (tmp_path / "p.yaml").write_text(CLI_PLAN)
    fleet = Fleet()
    fleet.add_proxy(PROJECT, INSTANCE, PROXY, "eventual")
    config = SimulatorConfig(job_duration=0.05, hostile=mode, hostile_drip_seconds=1.0)
    with SimulatorThread(fleet, config) as sim:
        result = cli(
            "apply", "p.yaml", "--no-gate", "--endpoint", sim.url, "--report", "r.jsonl",
            cwd=tmp_path, env={"HUAWEICLOUD_AUTH_TOKEN": TOKEN}, timeout=HANG_GUARD,
        )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode in (0, 3), output
    assert "Traceback" not in output and TOKEN not in output
    report = tmp_path / "r.jsonl"
    assert TOKEN not in report.read_text()
    (line,) = targets_of(report)
    assert (line["outcome"], line["error_code"]) == (outcome, code)
    assert report.read_text().splitlines()[-1].startswith('{"ts"') and '"run_finished"' in report.read_text()
