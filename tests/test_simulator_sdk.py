"""The official Huawei SDKs (huaweicloudsdkgaussdb, huaweicloudsdkiam 3.1.219), clients nobody here wrote.

The SDK only signs with AK/SK. In token mode the simulator ignores the signature and needs X-Auth-Token, which
the SDK can add per call with `invoker.add_header` (contract §5); in AK/SK mode the simulator verifies the
SDK's own signatures. The SDK is synchronous, so it runs in a worker thread while the simulator serves on the
test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

# Test-only dependencies (pyproject's `test` extra): a missing one must fail the suite, never skip it.
import huaweicloudsdkcore.auth.credentials as core_credentials
import huaweicloudsdkcore.exceptions.exceptions as core_exceptions
import huaweicloudsdkgaussdb.v3 as gaussdb
import huaweicloudsdkiam.v3 as iam_sdk
import pytest

from orchestrator.simulator import Fleet, IamUser, Simulator, SimulatorConfig, simulator_auth_from_env

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


async def test_sdk_lists_immediate_jobs_into_its_models(sim: Simulator, clock: FakeClock) -> None:
    """list_immediate_jobs reads our /immediate-jobs answer into ListImmediateJobsResponse and TaskDetailInfo."""
    client = sdk_client(sim.url)

    def change(proxy: str) -> str:
        body = gaussdb.ModifyProxyConsistRequest(session_consistence="true", consistence_mode="global")
        request = gaussdb.UpdateProxySessionConsistenceRequest(instance_id=I1, proxy_id=proxy, body=body)
        job_id: str = with_token(client.update_proxy_session_consistence_invoker(request)).job_id
        return job_id

    first = await in_thread(lambda: change(X))
    clock.now = 10.0
    second = await in_thread(lambda: change(Y))
    clock.now = 15.0
    request = gaussdb.ListImmediateJobsRequest(job_name="GaussDBforMySQLModifyProxyConsist", offset="0", limit="10")
    listed = await in_thread(lambda: with_token(client.list_immediate_jobs_invoker(request)))
    assert (listed.status_code, listed.total_count, listed.action_names) == (
        200,
        2,
        ["GaussDBforMySQLModifyProxyConsist"],
    )
    assert all(isinstance(job, gaussdb.TaskDetailInfo) for job in listed.jobs)
    assert [(job.job_id, job.instance_id, job.status, job.process) for job in listed.jobs] == [
        (second, I1, "Running", "50%"),
        (first, I1, "Completed", ""),
    ]
    assert (listed.jobs[1].show_detail, listed.jobs[1].extend_fields) == (False, None)

    running = gaussdb.ListImmediateJobsRequest(status="Running", job_id=second)
    only = await in_thread(lambda: with_token(client.list_immediate_jobs_invoker(running)))
    assert [job.job_id for job in only.jobs] == [second]
    assert [r.route for r in sim.stats.requests][-2:] == ["list_jobs", "list_jobs"]


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
    """In token mode an AK/SK-only SDK call is 401 APIGW.0301: a signature alone is not accepted."""
    client = sdk_client(sim.url)
    request = gaussdb.ShowGaussMySqlProxyListRequest(instance_id=I1, offset=0, limit=10)
    with pytest.raises(core_exceptions.ClientRequestException) as caught:
        await in_thread(lambda: client.show_gauss_my_sql_proxy_list(request))
    assert (caught.value.status_code, caught.value.error_code) == (401, "APIGW.0301")


# --- AK/SK: the SDK's own signatures, verified by the simulator's gateway [§5, §6] ---------------------------

AK = "FAKEAKEXAMPLE0000000"
SK = "FAKESKEXAMPLE00000000000000000000000000"


@pytest.fixture
async def aksk_sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    """A simulator that accepts only AK/SK signatures, set up from the client's own variables."""
    fleet = Fleet()
    fleet.add_proxy(P, I1, X, "eventual")
    fleet.add_proxy(P, I1, Y, "session")
    env = {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}
    config = simulator_auth_from_env(env).apply(SimulatorConfig(job_duration=10.0))
    async with Simulator(fleet, config, clock=clock) as simulator:  # the real wall clock: the SDK signs with it
        yield simulator


def aksk_client(url: str, sk: str = SK) -> Any:
    credentials = core_credentials.BasicCredentials(AK, sk, P)
    return gaussdb.GaussDBClient.new_builder().with_credentials(credentials).with_endpoints([url]).build()


async def test_sdk_signed_calls_change_list_and_read_the_job(aksk_sim: Simulator, clock: FakeClock) -> None:
    """The SDK with BasicCredentials changes a proxy, lists proxies and reads and lists jobs, all AK/SK-verified."""
    client = aksk_client(aksk_sim.url)
    body = gaussdb.ModifyProxyConsistRequest(session_consistence="true", consistence_mode="session")
    request = gaussdb.UpdateProxySessionConsistenceRequest(instance_id=I1, proxy_id=X, body=body, x_language="en-us")
    changed = await in_thread(lambda: client.update_proxy_session_consistence(request))
    assert changed.status_code == 200

    clock.now = 10.0
    shown = await in_thread(
        lambda: client.show_gauss_my_sql_job_info(gaussdb.ShowGaussMySqlJobInfoRequest(id=changed.job_id))
    )
    assert (shown.job.id, shown.job.status) == (changed.job_id, "Completed")

    listing = gaussdb.ShowGaussMySqlProxyListRequest(instance_id=I1, offset=0, limit=100)
    listed = await in_thread(lambda: client.show_gauss_my_sql_proxy_list(listing))
    assert {entry.proxy.pool_id: entry.proxy.consistence_mode for entry in listed.proxy_list} == {
        X: "session",
        Y: "session",
    }
    jobs = await in_thread(lambda: client.list_immediate_jobs(gaussdb.ListImmediateJobsRequest(limit="20")))
    assert [job.job_id for job in jobs.jobs] == [changed.job_id]
    assert [(r.route, r.status) for r in aksk_sim.stats.requests] == [
        ("put_consistency", 200),
        ("get_job", 200),
        ("list_proxies", 200),
        ("list_jobs", 200),
    ]


async def test_sdk_with_a_wrong_secret_key_is_refused_and_changes_nothing(aksk_sim: Simulator) -> None:
    """An SDK signing with the wrong SK gets ClientRequestException 401 APIGW.0301 and no job is created."""
    client = aksk_client(aksk_sim.url, sk="WRONGSKEXAMPLE0000000000000000000000000")
    body = gaussdb.ModifyProxyConsistRequest(session_consistence="false")
    request = gaussdb.UpdateProxySessionConsistenceRequest(instance_id=I1, proxy_id=X, body=body)
    with pytest.raises(core_exceptions.ClientRequestException) as caught:
        await in_thread(lambda: client.update_proxy_session_consistence(request))
    assert (caught.value.status_code, caught.value.error_code) == (401, "APIGW.0301")
    assert caught.value.error_msg.endswith("signature mismatch")
    assert aksk_sim.stats.jobs_created == 0


# --- IAM: the official IAM SDK logs in at the simulator [§7] ----------------------------------------------


async def test_iam_sdk_gets_a_token_that_the_simulator_then_accepts(clock: FakeClock) -> None:
    """IamClient.keystone_create_user_token_by_password reads our 201 into its models, and the token works."""
    iam = iam_sdk
    fleet = Fleet()
    fleet.add_proxy(P, I1, X, "eventual")
    env = {"HUAWEICLOUD_USERNAME": "ops", "HUAWEICLOUD_PASSWORD": "pw", "HUAWEICLOUD_DOMAIN_NAME": "acme"}
    config = simulator_auth_from_env(env, projects={"cn-north-4": P}).apply(SimulatorConfig())
    async with Simulator(fleet, config, clock=clock) as sim:
        # IamClient insists on AK/SK credentials and signs the login; the simulated IAM ignores the signature.
        credentials = core_credentials.GlobalCredentials(AK, SK)
        client = iam.IamClient.new_builder().with_credentials(credentials).with_endpoints([sim.url]).build()
        user = iam.PwdPasswordUser(domain=iam.PwdPasswordUserDomain(name="acme"), name="ops", password="pw")
        identity = iam.PwdIdentity(methods=["password"], password=iam.PwdPassword(user=user))
        scope = iam.AuthScope(project=iam.AuthScopeProject(name="cn-north-4"))
        body = iam.KeystoneCreateUserTokenByPasswordRequestBody(auth=iam.PwdAuth(identity=identity, scope=scope))
        request = iam.KeystoneCreateUserTokenByPasswordRequest(nocatalog="true", body=body)
        answer = await in_thread(lambda: client.keystone_create_user_token_by_password(request))
        assert answer.status_code == 201
        assert answer.x_subject_token.startswith("MII")
        assert (answer.token.project.id, answer.token.user.name, answer.token.catalog) == (P, "ops", None)
        assert answer.token.expires_at.endswith("Z")

        gauss = sdk_client(sim.url)
        listing = gaussdb.ShowGaussMySqlProxyListRequest(instance_id=I1, offset=0, limit=100)
        invoker = gauss.show_gauss_my_sql_proxy_list_invoker(listing).add_header("X-Auth-Token", answer.x_subject_token)
        listed = await in_thread(invoker.invoke)
        assert [entry.proxy.pool_id for entry in listed.proxy_list] == [X]


async def test_iam_sdk_sees_a_wrong_password_as_401(clock: FakeClock) -> None:
    """A wrong password reaches the IAM SDK as ClientRequestException with status 401."""
    iam = iam_sdk
    config = SimulatorConfig(iam_users=(IamUser("ops", "pw", "acme"),), iam_projects={"cn-north-4": P})
    async with Simulator(Fleet(), config, clock=clock) as sim:
        client = (
            iam.IamClient.new_builder()
            .with_credentials(core_credentials.GlobalCredentials(AK, SK))
            .with_endpoints([sim.url])
            .build()
        )
        user = iam.PwdPasswordUser(domain=iam.PwdPasswordUserDomain(name="acme"), name="ops", password="nope")
        identity = iam.PwdIdentity(methods=["password"], password=iam.PwdPassword(user=user))
        scope = iam.AuthScope(project=iam.AuthScopeProject(name="cn-north-4"))
        body = iam.KeystoneCreateUserTokenByPasswordRequestBody(auth=iam.PwdAuth(identity=identity, scope=scope))
        with pytest.raises(core_exceptions.ClientRequestException) as caught:
            await in_thread(
                lambda: client.keystone_create_user_token_by_password(
                    iam.KeystoneCreateUserTokenByPasswordRequest(body=body)
                )
            )
        # the SDK reads IAM's nested {"error": {"code", "message"}} body: "code" (an int) as error_code
        assert (caught.value.status_code, caught.value.error_code) == (401, 401)  # an int, taken as it is
        assert caught.value.error_msg == "The username or password is wrong."
