"""The simulator over real HTTP: an aiohttp client against `sim.url`, with a fake clock for job timing."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from orchestrator.simulator import Faults, Fleet, Simulator, SimulatorConfig, run_simulator

P = "619d3e78f61b4be68bc5aa0b59edcf7b"
I1 = "d512257ecca04d96a0f3a9021018a385in07"
I2 = "e512257ecca04d96a0f3a9021018a385in07"
X = "7bf4a8bbb4f4fb58233a242ee13603bpo01"  # the doc's 35-char example
Y = "8bf4a8bbb4f4fb58233a242ee13603bbpo01"
TOKEN = "MIItoken"
HEADERS = {"X-Auth-Token": TOKEN}


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_fleet() -> Fleet:
    fleet = Fleet()
    fleet.add_proxy(P, I1, X, "eventual")
    fleet.add_proxy(P, I1, Y, "session")
    for i in range(25):
        fleet.add_proxy(P, I2, f"{i:032x}po01", "global")
    return fleet


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    async with Simulator(make_fleet(), SimulatorConfig(job_duration=10.0), clock=clock) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        yield session


def put_url(sim: Simulator, proxy: str = X, instance: str = I1) -> str:
    return f"{sim.url}/v3/{P}/instances/{instance}/proxy/{proxy}/session-consistence"


def list_url(sim: Simulator, instance: str = I1) -> str:
    return f"{sim.url}/v3/{P}/instances/{instance}/proxies"


def job_url(sim: Simulator) -> str:
    return f"{sim.url}/v3/{P}/jobs"


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any, CIMultiDictProxy[str]]:
    async with http.request(method, url, **kwargs) as response:
        return response.status, await response.json(content_type=None), response.headers


async def put(http: aiohttp.ClientSession, sim: Simulator, payload: Any, proxy: str = X) -> tuple[int, Any]:
    status, answer, _ = await call(http, "PUT", put_url(sim, proxy), json=payload)
    return status, answer


async def job(http: aiohttp.ClientSession, sim: Simulator, job_id: str) -> tuple[int, Any]:
    status, answer, _ = await call(http, "GET", job_url(sim), params={"id": job_id})
    return status, answer


# --- PUT and the job lifecycle [§1, §3] ------------------------------------------------------------------


async def test_put_creates_a_job_that_changes_the_mode_when_it_completes(
    sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A PUT answers 200 {"job_id"}; the job runs job_duration and only its completion changes the mode."""
    status, answer = await put(http, sim, {"session_consistence": "true", "consistence_mode": "global"})
    assert status == 200
    assert set(answer) == {"job_id"}
    assert len(answer["job_id"]) == 36
    clock.advance(4.0)
    status, shown = await job(http, sim, answer["job_id"])
    assert (status, shown["job"]["status"], shown["job"]["process"]) == (200, "Running", "40%")
    assert sim.fleet.mode(P, I1, X) == "eventual"
    clock.advance(6.0)
    _, shown = await job(http, sim, answer["job_id"])
    assert (shown["job"]["status"], shown["job"]["fail_reason"]) == ("Completed", "")
    assert sim.fleet.mode(P, I1, X) == "global"
    assert sim.stats.jobs_created == 1
    assert sim.stats.puts_by_proxy[(P, I1, X)] == 1


@pytest.mark.parametrize(
    ("payload", "mode"),
    [
        ({"session_consistence": "true"}, "session"),
        ({"session_consistence": True}, "session"),
        ({"session_consistence": "false", "consistence_mode": "global"}, "global"),
        ({"consistence_mode": "global", "session_consistence": False}, "global"),  # Terraform's shape
        ({"session_consistence": "true", "consistence_mode": ""}, "session"),
    ],
)
async def test_put_accepts_string_and_bool_session_consistence(
    sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock, payload: dict[str, Any], mode: str
) -> None:
    """session_consistence may be a string or a JSON bool, and a set consistence_mode wins."""
    status, _ = await put(http, sim, payload)
    assert status == 200
    clock.advance(10.0)
    assert sim.fleet.mode(P, I1, X) == mode


async def test_put_accepts_the_sdk_bytes_and_content_type(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """The official SDK's exact body and `application/json;charset=utf-8` Content-Type are accepted."""
    data = b'{"session_consistence": "true", "consistence_mode": "global"}'
    headers = {"Content-Type": "application/json;charset=utf-8", "X-Language": "en-us"}
    status, answer, _ = await call(http, "PUT", put_url(sim), data=data, headers=headers)
    assert (status, set(answer)) == (200, {"job_id"})


@pytest.mark.parametrize(
    ("data", "content_type", "code"),
    [
        (b"", "application/json", "DBS.200006"),
        (b"{not json", "application/json", "DBS.200001"),
        (b"{}", "application/json", "DBS.200001"),
        (b'{"session_consistence": "maybe"}', "application/json", "DBS.200001"),
        (b'{"session_consistence": "true", "consistence_mode": "strong"}', "application/json", "DBS.200001"),
        (b'{"session_consistence": "true"}', "text/plain", "DBS.200001"),
    ],
)
async def test_put_refuses_bad_bodies(
    sim: Simulator, http: aiohttp.ClientSession, data: bytes, content_type: str, code: str
) -> None:
    """Bad bodies are 400 with a DBS error body, and nothing is changed."""
    headers = {"Content-Type": content_type}
    status, answer, _ = await call(http, "PUT", put_url(sim), data=data, headers=headers)
    assert (status, answer["error_code"]) == (400, code)
    assert set(answer) == {"error_code", "error_msg"}
    assert sim.stats.jobs_created == 0


async def test_put_while_a_job_runs_on_the_instance_is_409(
    sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A second change on an instance with a running job is 409 DBS.200019 until the job ends."""
    assert (await put(http, sim, {"session_consistence": "true"}))[0] == 200
    status, answer = await put(http, sim, {"session_consistence": "false", "consistence_mode": "global"}, Y)
    assert status == 409
    assert answer == {
        "error_code": "DBS.200019",
        "error_msg": "Another operation is being performed on the DB instance or the DB instance is faulty.",
    }
    clock.advance(10.0)
    assert (await put(http, sim, {"session_consistence": "false", "consistence_mode": "global"}, Y))[0] == 200


async def test_unknown_instance_and_proxy(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """An unknown instance is 404 DBS.200002 and an unknown proxy 400 DBS.201028 (the [INF] defaults)."""
    status, answer, _ = await call(http, "PUT", put_url(sim, X, "nope"), json={"session_consistence": "true"})
    assert (status, answer["error_code"]) == (404, "DBS.200002")
    status, answer, _ = await call(http, "GET", list_url(sim, "nope"))
    assert (status, answer["error_code"]) == (404, "DBS.200002")
    status, answer = await put(http, sim, {"session_consistence": "true"}, "nope")
    assert (status, answer["error_code"]) == (400, "DBS.201028")


@pytest.mark.parametrize(
    ("noop", "status", "answer"),
    [("nojob", 200, {}), ("null", 200, {"job_id": None}), ("error", 400, None), ("job", 200, None)],
)
async def test_noop_variants(
    sim: Simulator, http: aiohttp.ClientSession, noop: str, status: int, answer: dict[str, Any] | None
) -> None:
    """A PUT for the current mode answers per the noop switch: a job, 200 without job, or 400."""
    sim.set_config(noop=noop)
    got_status, got = await put(http, sim, {"session_consistence": "false", "consistence_mode": "eventual"})
    assert got_status == status
    if answer is not None:
        assert got == answer
    assert sim.stats.jobs_created == (1 if noop == "job" else 0)


# --- listing [§2] ---------------------------------------------------------------------------------------


async def test_listing_pages_without_total_count(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Listing pages by offset/limit in a stable order, has no total_count, and a short page ends it."""
    seen: list[str] = []
    offset = 0
    while True:
        status, answer, _ = await call(http, "GET", list_url(sim, I2), params={"offset": offset, "limit": 10})
        assert status == 200
        assert set(answer) == {"proxy_list"}
        page = [entry["proxy"]["pool_id"] for entry in answer["proxy_list"]]
        seen += page
        offset += len(page)
        if len(page) < 10:
            break
    assert seen == [f"{i:032x}po01" for i in range(25)]
    _, default, _ = await call(http, "GET", list_url(sim, I2))
    assert len(default["proxy_list"]) == 25  # default limit 100


async def test_listing_default_limit_is_switchable(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """list_default_limit=10 reproduces the SDK docstring's default."""
    sim.set_config(list_default_limit=10)
    _, answer, _ = await call(http, "GET", list_url(sim, I2))
    assert len(answer["proxy_list"]) == 10


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "101"}, {"offset": "-1"}, {"limit": "ten"}])
async def test_listing_refuses_out_of_range_paging(
    sim: Simulator, http: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    """limit outside 1..100, a negative offset or a non-integer is 400 DBS.200001."""
    status, answer, _ = await call(http, "GET", list_url(sim), params=params)
    assert (status, answer["error_code"]) == (400, "DBS.200001")


async def test_listing_shows_the_sdk_fields(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Each entry has the MysqlShowProxyResponseV3 shape with MysqlProxyV3 fields."""
    _, answer, _ = await call(http, "GET", list_url(sim), params={"offset": 0, "limit": 100})
    entry = answer["proxy_list"][0]
    assert set(entry) == {"proxy", "master_node", "readonly_nodes", "htap_nodes"}
    proxy = entry["proxy"]
    assert {"pool_id", "name", "status", "pool_status", "address", "port", "type", "consistence_mode"} <= set(proxy)
    assert (proxy["pool_id"], proxy["status"], proxy["consistence_mode"]) == (X, "ACTIVE", "eventual")


# --- jobs [§3] ------------------------------------------------------------------------------------------


async def test_job_is_invisible_for_the_visibility_delay(
    sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A new job id is "not found" for job_visibility_delay seconds, then visible."""
    sim.set_config(job_visibility_delay=3.0)
    _, answer = await put(http, sim, {"session_consistence": "true"})
    status, body = await job(http, sim, answer["job_id"])
    assert (status, body["error_code"]) == (404, "DBS.200002")
    clock.advance(3.0)
    status, body = await job(http, sim, answer["job_id"])
    assert (status, body["job"]["status"]) == (200, "Running")


@pytest.mark.parametrize(
    ("value", "status", "answer"),
    [
        ("404", 404, {"error_code": "DBS.200002", "error_msg": "The job does not exist."}),
        ("400", 400, {"error_code": "DBS.200001", "error_msg": "Parameter error."}),
        ("empty", 200, {"job": {}}),
        ("null", 200, {"job": None}),
    ],
)
async def test_job_not_found_variants(
    sim: Simulator, http: aiohttp.ClientSession, value: str, status: int, answer: dict[str, Any]
) -> None:
    """An unknown job id answers per the job_not_found switch."""
    sim.set_config(job_not_found=value)
    assert await job(http, sim, "00000000-0000-0000-0000-000000000000") == (status, answer)


async def test_job_without_id_is_400(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """/jobs without ?id= is 400 DBS.200001."""
    status, answer, _ = await call(http, "GET", job_url(sim))
    assert (status, answer["error_code"]) == (400, "DBS.200001")


async def test_failed_job_reports_a_reason_and_keeps_the_mode(
    sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A job of a proxy in fail_proxies ends Failed with a fail_reason; the mode is unchanged."""
    sim.set_config(fail_proxies=frozenset({X}))
    _, answer = await put(http, sim, {"session_consistence": "true"})
    clock.advance(10.0)
    _, shown = await job(http, sim, answer["job_id"])
    assert shown["job"]["status"] == "Failed"
    assert shown["job"]["fail_reason"]
    assert sim.fleet.mode(P, I1, X) == "eventual"


# --- gateway: auth, routing, request ids [§7, §8] --------------------------------------------------


async def test_missing_token_is_401_apigw_0301(sim: Simulator) -> None:
    """Without X-Auth-Token the gateway answers 401 APIGW.0301 with request_id in the body and header."""
    async with aiohttp.ClientSession() as anonymous:
        status, answer, headers = await call(anonymous, "GET", list_url(sim))
    assert status == 401
    assert answer["error_code"] == "APIGW.0301"
    assert answer["error_msg"] == "Incorrect IAM authentication information: x-auth-token not found"
    assert answer["request_id"] == headers["X-Request-Id"]


async def test_configured_tokens_and_expired_tokens(sim: Simulator) -> None:
    """With tokens set, others are 401 APIGW.0301; an expired token is 401 APIGW.0307."""
    sim.set_config(tokens=frozenset({"good"}), expired_tokens=frozenset({"old"}))
    for token, status, code in [("good", 200, None), ("bad", 401, "APIGW.0301"), ("old", 401, "APIGW.0307")]:
        async with aiohttp.ClientSession(headers={"X-Auth-Token": token}) as session:
            got, answer, _ = await call(session, "GET", list_url(sim))
        assert got == status
        assert code is None or answer["error_code"] == code


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", f"/v3/{P}/instances/{I1}/proxies"), ("GET", "/v3/nothing/here"), ("POST", f"/v3/{P}/jobs")],
)
async def test_unknown_route_is_404_apigw_0101(
    sim: Simulator, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    """A wrong path or method is the gateway's 404 APIGW.0101 with a request_id."""
    status, answer, _ = await call(http, method, sim.url + path)
    assert (status, answer["error_code"]) == (404, "APIGW.0101")
    assert answer["request_id"]
    assert sim.stats.requests[-1].route == "unknown"


async def test_every_answer_has_a_request_id_header(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Success and error answers alike carry X-Request-Id."""
    _, _, ok = await call(http, "GET", list_url(sim))
    _, _, bad = await call(http, "GET", job_url(sim))
    assert ok["X-Request-Id"] != bad["X-Request-Id"]


# --- faults ---------------------------------------------------------------------------------------------


async def test_error_500_refuses_without_applying(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """error_500=1.0 answers 500 DBS.05000000 "server error." and creates no job."""
    sim.set_faults(error_500=1.0)
    status, answer = await put(http, sim, {"session_consistence": "true"})
    assert (status, answer) == (500, {"error_code": "DBS.05000000", "error_msg": "server error."})
    assert sim.stats.jobs_created == 0
    assert sim.stats.requests[-1].fault == "error_500"


@pytest.mark.parametrize(("retry_after", "header"), [(1.0, "1"), (0.25, "0.25"), (None, None)])
async def test_throttle_429_with_and_without_retry_after(
    sim: Simulator, http: aiohttp.ClientSession, retry_after: float | None, header: str | None
) -> None:
    """throttle_429=1.0 answers the gateway's 429 APIGW.0308, with Retry-After unless it is None."""
    sim.set_faults(Faults(throttle_429=1.0, retry_after=retry_after))
    status, answer, headers = await call(http, "PUT", put_url(sim), json={"session_consistence": "true"})
    assert (status, answer["error_code"]) == (429, "APIGW.0308")
    assert answer["request_id"] == headers["X-Request-Id"]
    assert headers.get("Retry-After") == header
    assert sim.stats.jobs_created == 0


async def test_drop_before_closes_without_answer_or_change(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """drop_before closes the connection without a byte; the client sees a disconnect and nothing changes."""
    sim.set_faults(drop_before=1.0)
    with pytest.raises(aiohttp.ClientConnectionError):
        await put(http, sim, {"session_consistence": "true"})
    assert sim.stats.jobs_created == 0
    assert {(r.status, r.fault) for r in sim.stats.requests} == {(None, "drop_before")}


async def test_dropped_connection_sends_no_bytes(sim: Simulator) -> None:
    """A dropped request gets an empty stream: no status line, no headers."""
    sim.set_faults(drop_before=1.0)
    host, port = sim.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /v3/{P}/instances/{I1}/proxies HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\n\r\n".encode())
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5.0) == b""
    writer.close()
    await writer.wait_closed()


async def test_drop_after_applies_the_change_but_never_answers(
    sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """drop_after creates the job and then drops the connection: the client cannot know it worked."""
    sim.set_faults(drop_after=1.0)
    with pytest.raises(aiohttp.ClientConnectionError):
        await put(http, sim, {"session_consistence": "true", "consistence_mode": "global"})
    # aiohttp re-sends an idempotent PUT once after a disconnect; the re-send meets the running job (409)
    assert sim.stats.jobs_created == 1
    assert all(r.fault == "drop_after" for r in sim.stats.requests)
    clock.advance(10.0)
    assert sim.fleet.mode(P, I1, X) == "global"


async def test_drop_after_leaves_gets_alone(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """drop_after only concerns PUTs; GETs are answered."""
    sim.set_faults(drop_after=1.0)
    status, _, _ = await call(http, "GET", list_url(sim))
    assert status == 200


async def test_latency_delays_every_answer(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """latency adds that many (real) seconds before answering."""
    sim.set_faults(latency=0.2)
    started = time.monotonic()
    status, _, _ = await call(http, "GET", list_url(sim))
    assert status == 200
    assert time.monotonic() - started >= 0.2


async def test_stall_outlasts_the_client_timeout_and_close_is_prompt(clock: FakeClock) -> None:
    """A stalled request times the client out, and closing the simulator does not wait for the stall."""
    fleet = make_fleet()
    config = SimulatorConfig(faults=Faults(stall=1.0, stall_seconds=30.0))
    started = time.monotonic()
    async with Simulator(fleet, config, clock=clock) as sim, aiohttp.ClientSession(headers=HEADERS) as http:
        with pytest.raises(asyncio.TimeoutError):
            await call(http, "GET", list_url(sim), timeout=aiohttp.ClientTimeout(total=0.2))
    assert time.monotonic() - started < 5.0
    assert sim.stats.requests[0].fault == "stall"


async def test_faults_are_reproducible_with_a_seed(clock: FakeClock) -> None:
    """Two simulators with the same seed answer the same sequence of statuses."""
    runs = []
    for _ in range(2):
        config = SimulatorConfig(faults=Faults(error_500=0.3, throttle_429=0.3, seed=11))
        async with (
            Simulator(make_fleet(), config, clock=clock) as sim,
            aiohttp.ClientSession(headers=HEADERS) as h,
        ):
            runs.append([(await call(h, "GET", list_url(sim)))[0] for _ in range(20)])
    assert runs[0] == runs[1]
    assert {200, 429, 500} <= set(runs[0])


async def test_config_changes_take_effect_at_run_time(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Faults set on a running simulator apply to the next request and can be removed again."""
    sim.set_faults(error_500=1.0)
    assert (await call(http, "GET", list_url(sim)))[0] == 500
    sim.set_faults(Faults())
    assert (await call(http, "GET", list_url(sim)))[0] == 200


# --- stats --------------------------------------------------------------------------------------------------


async def test_stats_count_every_request_and_the_busiest_window(
    sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """Stats record arrival times from the injected clock, routes and statuses; max_in_window slides."""
    for _ in range(3):
        await call(http, "GET", list_url(sim))
        clock.advance(0.1)
    clock.advance(2.0)
    await call(http, "GET", job_url(sim), params={"id": "x"})
    assert sim.stats.max_in_window(1.0) == 3
    assert sim.stats.max_in_window(1.0, route="get_job") == 1
    assert [r.at for r in sim.stats.requests] == pytest.approx([1000.0, 1000.1, 1000.2, 1002.3])
    assert sim.stats.count(route="list_proxies", status=200) == 3
    assert sim.stats.by_status() == {200: 3, 404: 1}


# --- request log (`orchestrator simulate -v`) -------------------------------------------------------------

LOG_LINE = re.compile(r"^(GET|PUT|POST|\?) \S+( \S+=\S+)* -> (\d{3}|dropped)( \(\w+\))? \d+ ms$")


async def test_log_gets_one_line_per_request_with_ids_status_and_time(clock: FakeClock) -> None:
    """log(line) is called once per request: method, route, ids, status or fault, elapsed ms; no token, no body."""
    lines: list[str] = []
    async with (
        Simulator(make_fleet(), SimulatorConfig(job_duration=10.0), clock=clock, log=lines.append) as sim,
        aiohttp.ClientSession(headers=HEADERS) as http,
    ):
        _, answer = await put(http, sim, {"session_consistence": "true", "consistence_mode": "global"})
        await job(http, sim, answer["job_id"])
        await call(http, "GET", f"{sim.url}/v3/{P}/nowhere")
        sim.set_faults(throttle_429=1.0)
        await call(http, "GET", list_url(sim))
        sim.set_faults(Faults(drop_before=1.0))
        with pytest.raises(aiohttp.ClientConnectionError):
            await call(http, "GET", list_url(sim))
    assert len(lines) == len(sim.stats.requests)
    assert all(LOG_LINE.match(line) for line in lines), lines
    outcomes = [line.rsplit(" ", 2)[0] for line in lines]
    assert outcomes[:4] == [
        f"PUT put_consistency project={P} instance={I1} proxy={X} -> 200",
        f"GET get_job project={P} -> 200",
        "GET unknown -> 404",
        f"GET list_proxies project={P} instance={I1} -> 429 (throttle_429)",
    ]
    # aiohttp re-sends a GET once when its kept-alive connection drops: one or two dropped attempts
    assert set(outcomes[4:]) == {f"GET list_proxies project={P} instance={I1} -> dropped (drop_before)"}
    assert not any(TOKEN in line or "global" in line for line in lines)


async def test_log_shows_a_stalled_request_with_its_real_time(clock: FakeClock) -> None:
    """A stalled request is logged once it is answered, marked (stall), with the real elapsed time."""
    lines: list[str] = []
    config = SimulatorConfig(faults=Faults(stall=1.0, stall_seconds=0.2))
    async with (
        Simulator(make_fleet(), config, clock=clock, log=lines.append) as sim,
        aiohttp.ClientSession(headers=HEADERS) as http,
    ):
        await call(http, "GET", list_url(sim))
    (line,) = lines
    assert line.startswith(f"GET list_proxies project={P} instance={I1} -> 200 (stall) ")
    assert int(line.split()[-2]) >= 200


async def test_a_failing_log_does_not_change_the_answer(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """If the log callback raises (say, a closed stdout), the request is still answered."""

    def broken(line: str) -> None:
        raise BrokenPipeError

    sim.log = broken
    status, _, _ = await call(http, "GET", list_url(sim))
    assert status == 200


# --- the blocking entry point ---------------------------------------------------------------------


def test_run_simulator_serves_until_sigterm() -> None:
    """run_simulator calls ready(url), serves and logs requests, and returns on SIGTERM."""
    answers: list[int] = []

    def client(url: str) -> None:
        request = urllib.request.Request(f"{url}/v3/{P}/instances/{I1}/proxies", headers=HEADERS)  # noqa: S310
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - our local http URL
            answers.append(response.status)
        os.kill(os.getpid(), signal.SIGTERM)

    def ready(url: str) -> None:
        threading.Thread(target=client, args=(url,), daemon=True).start()

    lines: list[str] = []
    run_simulator(make_fleet(), SimulatorConfig(), port=0, ready=ready, log=lines.append)
    assert answers == [200]
    assert [line.rsplit(" ", 2)[0] for line in lines] == [f"GET list_proxies project={P} instance={I1} -> 200"]
