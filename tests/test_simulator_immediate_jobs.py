"""GET /v3/{project_id}/immediate-jobs over HTTP (contract §3): every job listed, newest first, filtered and paged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest

from orchestrator.simulator import JOB_NAME, Faults, Fleet, Simulator, SimulatorConfig

P = "619d3e78f61b4be68bc5aa0b59edcf7b"
OTHER_PROJECT = "719d3e78f61b4be68bc5aa0b59edcf7b"
I1 = "d512257ecca04d96a0f3a9021018a385in07"
I2 = "e512257ecca04d96a0f3a9021018a385in07"
X = "7bf4a8bbb4f4fb58233a242ee13603bpo01"
PROXIES = [f"{i:032x}po01" for i in range(25)]  # on I2, all "global"
TOKEN = "MIItoken"
TASK_DETAIL_FIELDS = {
    "instance_id",
    "instance_name",
    "instance_status",
    "job_id",
    "order_id",
    "job_name",
    "status",
    "process",
    "created_time",
    "ended_time",
    "fail_reason",
    "show_detail",
    "extend_fields",
}
ORIGIN = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def started(clock: FakeClock, **changes: Any) -> Simulator:
    fleet = Fleet()
    fleet.add_proxy(P, I1, X, "eventual")
    fleet.add_proxy(OTHER_PROJECT, I1, X, "eventual")
    for proxy in PROXIES:
        fleet.add_proxy(P, I2, proxy, "global")
    config = SimulatorConfig(**{"job_duration": 10.0, "same_instance": "allow", **changes})
    simulator = Simulator(fleet, config, clock=clock)
    await simulator.start()
    fleet.bind_clock(clock, ORIGIN)  # fixed wall stamps: created_time of clock 0 is ORIGIN
    return simulator


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    simulator = await started(clock)
    yield simulator
    await simulator.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"X-Auth-Token": TOKEN}) as session:
        yield session


async def change(http: aiohttp.ClientSession, sim: Simulator, proxy: str, instance: str = I2) -> str:
    url = f"{sim.url}/v3/{P}/instances/{instance}/proxy/{proxy}/session-consistence"
    async with http.put(url, json={"session_consistence": "true"}) as response:
        assert response.status == 200
        job_id: str = (await response.json())["job_id"]
        return job_id


async def listed(
    http: aiohttp.ClientSession, sim: Simulator, project: str = P, **query: str
) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{sim.url}/v3/{project}/immediate-jobs", params=query) as response:
        return response.status, await response.json()


async def changes(http: aiohttp.ClientSession, sim: Simulator, clock: FakeClock, count: int) -> list[str]:
    """`count` jobs on I2, one second apart; returned oldest first."""
    ids = []
    for proxy in PROXIES[:count]:
        ids.append(await change(http, sim, proxy))
        clock.now += 1.0
    return ids


async def test_every_job_is_listed_newest_first_with_its_instance_and_current_status(
    sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """Each consistency job appears as a TaskDetailInfo, newest first, its status resolved against the clock."""
    first = await change(http, sim, X, instance=I1)
    clock.now = 4.0
    second = await change(http, sim, PROXIES[0])
    clock.now = 12.0  # the first has completed, the second is 80 % through
    status, answer = await listed(http, sim)
    assert status == 200
    assert set(answer) == {"jobs", "total_count", "action_names"}
    assert (answer["total_count"], answer["action_names"]) == (2, [JOB_NAME])
    newest, oldest = answer["jobs"]
    assert all(set(row) == TASK_DETAIL_FIELDS for row in answer["jobs"])
    assert (newest["job_id"], newest["instance_id"], newest["status"], newest["process"]) == (
        second,
        I2,
        "Running",
        "80%",
    )
    assert newest["ended_time"] == ""
    assert oldest == {
        "instance_id": I1,
        "instance_name": "gaussdb-d512257e",
        "instance_status": "normal",
        "job_id": first,
        "order_id": "",
        "job_name": JOB_NAME,
        "status": "Completed",
        "process": "",
        "created_time": "2026-12-03T12:00:00+0000",
        "ended_time": "2026-12-03T12:00:10+0000",
        "fail_reason": "",
        "show_detail": False,
        "extend_fields": None,
    }
    assert sim.stats.count(route="list_jobs", status=200) == 1


async def test_an_empty_project_lists_nothing(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Without jobs the answer is an empty page, total_count 0 and no action names; other projects' jobs are not shown."""
    await change(http, sim, PROXIES[0])
    assert await listed(http, sim, project=OTHER_PROJECT) == (
        200,
        {"jobs": [], "total_count": 0, "action_names": []},
    )


async def test_filters_by_status_job_name_and_job_id(
    sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """status, job_name and job_id are exact-match filters; total_count counts the matches."""
    ids = await changes(http, sim, clock, 3)  # created at 0, 1, 2
    clock.now = 11.0  # the first two have completed
    _, running = await listed(http, sim, status="Running")
    assert ([row["job_id"] for row in running["jobs"]], running["total_count"]) == ([ids[2]], 1)
    _, completed = await listed(http, sim, status="Completed")
    assert [row["job_id"] for row in completed["jobs"]] == [ids[1], ids[0]]
    _, named = await listed(http, sim, job_name=JOB_NAME)
    assert named["total_count"] == 3
    _, other_name = await listed(http, sim, job_name="RebootGaussDBforMySQLInstance")
    assert (other_name["jobs"], other_name["total_count"]) == ([], 0)
    _, one = await listed(http, sim, job_id=ids[1])
    assert [row["job_id"] for row in one["jobs"]] == [ids[1]]
    _, unknown = await listed(http, sim, job_id="00000000-0000-0000-0000-000000000000")
    assert unknown["total_count"] == 0


async def test_a_failed_job_lists_its_reason(sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock) -> None:
    """A Failed job shows its fail_reason and ended_time and is found with status=Failed."""
    sim.set_config(fail_proxies=frozenset({PROXIES[0]}))
    job_id = await change(http, sim, PROXIES[0])
    clock.now = 10.0
    _, answer = await listed(http, sim, status="Failed")
    (row,) = answer["jobs"]
    assert (row["job_id"], row["ended_time"]) == (job_id, "2026-12-03T12:00:10+0000")
    assert PROXIES[0] in row["fail_reason"]


async def test_pages_with_offset_and_limit(sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock) -> None:
    """limit defaults to 10; offset skips that many of the newest-first jobs; total_count is every match."""
    ids = await changes(http, sim, clock, 23)
    newest_first = ids[::-1]
    _, first = await listed(http, sim)
    assert ([row["job_id"] for row in first["jobs"]], first["total_count"]) == (newest_first[:10], 23)
    _, second = await listed(http, sim, offset="10", limit="20")
    assert [row["job_id"] for row in second["jobs"]] == newest_first[10:]
    _, beyond = await listed(http, sim, offset="50", limit="50")
    assert (beyond["jobs"], beyond["total_count"]) == ([], 23)


async def test_offset_as_a_page_number_is_switchable(clock: FakeClock, http: aiohttp.ClientSession) -> None:
    """With immediate_jobs_offset="page" offset is a 1-based page number (0 and absent mean page 1) [UNK]."""
    sim = await started(clock, immediate_jobs_offset="page")
    try:
        ids = (await changes(http, sim, clock, 12))[::-1]
        for offset, expected in ((None, ids[:10]), ("0", ids[:10]), ("1", ids[:10]), ("2", ids[10:])):
            query = {} if offset is None else {"offset": offset}
            _, answer = await listed(http, sim, **query)
            assert [row["job_id"] for row in answer["jobs"]] == expected, offset
    finally:
        await sim.close()


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "5"},
        {"limit": "100"},
        {"limit": "ten"},
        {"limit": ""},
        {"offset": "-1"},
        {"offset": "x"},
        {"status": "Done"},
        {"start_time": "2026-12-03 12:00:00"},
        {"end_time": "yesterday"},
    ],
)
async def test_bad_paging_filters_and_times_are_400(
    sim: Simulator, http: aiohttp.ClientSession, query: dict[str, str]
) -> None:
    """limit outside 10|20|50, a negative or non-numeric offset, an unknown status or a bad time: 400 DBS.200001."""
    status, answer = await listed(http, sim, **query)
    assert (status, answer["error_code"]) == (400, "DBS.200001")


async def test_time_window_bounds_the_creation_time(
    sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """start_time/end_time ("yyyy-mm-ddThh:mm:ssZ", Z an offset like +0800) keep jobs created inside, ends included."""
    ids = await changes(http, sim, clock, 3)  # created at ORIGIN + 0, 1, 2 s

    def stamp(seconds: int, zone: int = 0) -> str:
        moment = (ORIGIN + timedelta(seconds=seconds)).astimezone(timezone(timedelta(hours=zone)))
        return moment.strftime("%Y-%m-%dT%H:%M:%S%z")

    _, window = await listed(http, sim, start_time=stamp(1, zone=8), end_time=stamp(2))
    assert [row["job_id"] for row in window["jobs"]] == [ids[2], ids[1]]
    _, after = await listed(http, sim, start_time=stamp(3))
    assert after["total_count"] == 0


async def test_pending_jobs_are_listed_as_pending_or_running(clock: FakeClock, http: aiohttp.ClientSession) -> None:
    """A queued job is "Pending" in the listing by default, "Running" with immediate_jobs_pending="Running" [UNK]."""
    for shown in ("Pending", "Running"):
        sim = await started(clock, same_instance="queue", immediate_jobs_pending=shown)
        try:
            await change(http, sim, PROXIES[0])
            queued = await change(http, sim, PROXIES[1])  # waits for the first one
            _, answer = await listed(http, sim, status=shown)
            assert queued in [row["job_id"] for row in answer["jobs"]]
            assert next(row for row in answer["jobs"] if row["job_id"] == queued)["process"] == ""
        finally:
            await sim.close()
            clock.now = 0.0


async def test_jobs_are_listed_only_once_visible(clock: FakeClock, http: aiohttp.ClientSession) -> None:
    """A job hidden from /jobs?id= by job_visibility_delay is not listed either [INF]."""
    sim = await started(clock, job_visibility_delay=3.0)
    try:
        job_id = await change(http, sim, PROXIES[0])
        _, hidden = await listed(http, sim)
        assert hidden["total_count"] == 0
        clock.now = 3.0
        _, shown = await listed(http, sim)
        assert [row["job_id"] for row in shown["jobs"]] == [job_id]
    finally:
        await sim.close()


async def test_the_listing_goes_through_the_gateway(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """The route needs credentials like the others, and injected faults apply to it."""
    async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{sim.url}/v3/{P}/immediate-jobs") as response:
        assert (response.status, (await response.json())["error_code"]) == (401, "APIGW.0301")
    sim.set_faults(Faults(throttle_429=1.0))
    status, answer = await listed(http, sim)
    assert (status, answer["error_code"]) == (429, "APIGW.0308")
    assert [(r.route, r.status, r.fault) for r in sim.stats.requests] == [
        ("list_jobs", 401, None),
        ("list_jobs", 429, "throttle_429"),
    ]
