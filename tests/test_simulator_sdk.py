"""The official Huawei SDK (huaweicloudsdkgaussdb 3.1.219), a client nobody here wrote, against the simulator.

The SDK only signs with AK/SK; in token mode the simulator ignores the signature and needs X-Auth-Token, which
the SDK can add per call with `invoker.add_header` (contract §5). The SDK is synchronous, so it runs in a
worker thread while the simulator serves on the test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest

gaussdb = pytest.importorskip("huaweicloudsdkgaussdb.v3")
core_credentials = pytest.importorskip("huaweicloudsdkcore.auth.credentials")
core_exceptions = pytest.importorskip("huaweicloudsdkcore.exceptions.exceptions")

from orchestrator.simulator import Fleet, Simulator, SimulatorConfig  # noqa: E402

P = "619d3e78f61b4be68bc5aa0b59edcf7b"
I1 = "d512257ecca04d96a0f3a9021018a385in07"
X = "7bf4a8bbb4f4fb58233a242ee13603bpo01"
Y = "8bf4a8bbb4f4fb58233a242ee13603bbpo01"
TOKEN = "MIIsdk-token"
T = TypeVar("T")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    fleet = Fleet()
    fleet.add_proxy(P, I1, X, "eventual")
    fleet.add_proxy(P, I1, Y, "session")
    async with Simulator(fleet, SimulatorConfig(job_duration=10.0), clock=clock) as simulator:
        yield simulator


def sdk_client(url: str) -> Any:
    credentials = core_credentials.BasicCredentials("FAKEAKEXAMPLE0000000", "FAKESKEXAMPLE000000000000000000", P)
    return gaussdb.GaussDBClient.new_builder().with_credentials(credentials).with_endpoint(url).build()


async def in_thread(function: Callable[[], T]) -> T:
    return await asyncio.to_thread(function)


def with_token(invoker: Any) -> Any:
    return invoker.add_header("X-Auth-Token", TOKEN).invoke()


async def test_sdk_changes_a_proxy_and_reads_the_job_and_listing(sim: Simulator, clock: FakeClock) -> None:
    """The SDK's PUT, /jobs and /proxies calls deserialize the simulator's answers into its models."""
    client = sdk_client(sim.url)
    body = gaussdb.ModifyProxyConsistRequest(session_consistence="true", consistence_mode="global")
    request = gaussdb.UpdateProxySessionConsistenceRequest(instance_id=I1, proxy_id=X, body=body)
    changed = await in_thread(lambda: with_token(client.update_proxy_session_consistence_invoker(request)))
    assert changed.status_code == 200
    assert len(changed.job_id) == 36

    clock.now = 10.0
    job_request = gaussdb.ShowGaussMySqlJobInfoRequest(id=changed.job_id)
    shown = await in_thread(lambda: with_token(client.show_gauss_my_sql_job_info_invoker(job_request)))
    assert (shown.job.status, shown.job.name, shown.job.instance.id) == (
        "Completed",
        "GaussDBforMySQLModifyProxyConsist",
        I1,
    )

    list_request = gaussdb.ShowGaussMySqlProxyListRequest(instance_id=I1, offset=0, limit=100)
    listed = await in_thread(lambda: with_token(client.show_gauss_my_sql_proxy_list_invoker(list_request)))
    modes = {entry.proxy.pool_id: entry.proxy.consistence_mode for entry in listed.proxy_list}
    assert modes == {X: "global", Y: "session"}
    assert [r.route for r in sim.stats.requests] == ["put_consistency", "get_job", "list_proxies"]


async def test_sdk_sees_409_busy_as_a_client_error_with_code_and_request_id(sim: Simulator) -> None:
    """A 409 DBS.200019 reaches the SDK as ClientRequestException carrying error_code and X-Request-Id."""
    client = sdk_client(sim.url)

    def change(proxy: str) -> Any:
        body = gaussdb.ModifyProxyConsistRequest(session_consistence="false")
        request = gaussdb.UpdateProxySessionConsistenceRequest(instance_id=I1, proxy_id=proxy, body=body)
        return with_token(client.update_proxy_session_consistence_invoker(request))

    await in_thread(lambda: change(Y))
    with pytest.raises(core_exceptions.ClientRequestException) as caught:
        await in_thread(lambda: change(X))
    assert (caught.value.status_code, caught.value.error_code) == (409, "DBS.200019")
    assert caught.value.request_id == sim.stats.requests[-1].request_id


async def test_sdk_without_a_token_is_refused_in_token_mode(sim: Simulator) -> None:
    """In token mode an AK/SK-only SDK call is 401 APIGW.0301: the signature is not checked yet."""
    client = sdk_client(sim.url)
    request = gaussdb.ShowGaussMySqlProxyListRequest(instance_id=I1, offset=0, limit=10)
    with pytest.raises(core_exceptions.ClientRequestException) as caught:
        await in_thread(lambda: client.show_gauss_my_sql_proxy_list(request))
    assert (caught.value.status_code, caught.value.error_code) == (401, "APIGW.0301")
