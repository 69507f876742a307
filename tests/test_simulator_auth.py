"""The simulator's gateway checks and IAM over real HTTP: tokens (issue, expiry, scope), AK/SK, the lock, env set-up.

Both clocks are fake: the monotonic one for jobs, the wall clock for token expiry and signature skew.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from orchestrator.credentials import PasswordCredentials, iam_token_request_body
from orchestrator.errors import UsageError
from orchestrator.signing import sign_request
from orchestrator.simulator import (
    AccessKey,
    Fleet,
    IamUser,
    Simulator,
    SimulatorConfig,
    simulator_auth_from_env,
)

P = "619d3e78f61b4be68bc5aa0b59edcf7b"
P2 = "729d3e78f61b4be68bc5aa0b59edcf7c"
I1 = "d512257ecca04d96a0f3a9021018a385in07"
I2 = "e512257ecca04d96a0f3a9021018a385in07"
X = "7bf4a8bbb4f4fb58233a242ee13603bpo01"
AK = "FAKEAKEXAMPLE0000000"
SK = "FAKESKEXAMPLE00000000000000000000000000"
USER = IamUser("ops", "s3cret pass", "acme")
START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class WallClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


@pytest.fixture
async def sim(wall: WallClock) -> AsyncIterator[Simulator]:
    fleet = Fleet()
    fleet.add_proxy(P, I1, X, "eventual")
    fleet.add_proxy(P2, I2, X, "session")
    config = SimulatorConfig(
        auth_mode="both",
        tokens=frozenset(),
        access_keys=(AccessKey(AK, SK),),
        iam_users=(USER,),
        iam_projects={"cn-north-4": P, "cn-east-3": P2},
        token_lifetime=60.0,
    )
    async with Simulator(fleet, config, clock=lambda: 0.0, wall_clock=wall) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def send(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, Any, dict[str, str]]:
    async with http.request(method, url, headers=headers, data=body or None) as response:
        return response.status, json.loads(await response.read()), dict(response.headers)


def list_url(sim: Simulator, project: str = P, instance: str = I1) -> str:
    return f"{sim.url}/v3/{project}/instances/{instance}/proxies?limit=100&offset=0"


async def login(
    http: aiohttp.ClientSession,
    sim: Simulator,
    body: dict[str, Any],
    query: str = "",
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Content-Type": "application/json;charset=utf8"}
    return await send(http, "POST", f"{sim.url}/v3/auth/tokens{query}", headers, json.dumps(body).encode())


def password_body(password: str = USER.password, project: str = "cn-north-4", domain: str = USER.domain) -> Any:
    return iam_token_request_body(PasswordCredentials(USER.name, password, domain), project_name=project)


def signed(
    method: str,
    url: str,
    wall: WallClock,
    body: bytes = b"",
    *,
    ak: str = AK,
    sk: str = SK,
    project: str = P,
    extra: dict[str, str] | None = None,
    skew: float = 0.0,
) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Project-Id": project, **(extra or {})}
    return sign_request(method, url, headers, body, ak=ak, sk=sk, now=wall.now + timedelta(seconds=skew))


def assert_refused(status: int, answer: Any, code: str = "APIGW.0301") -> None:
    assert (status, answer["error_code"]) == (401, code)
    assert SK not in answer["error_msg"]


# --- IAM: POST /v3/auth/tokens [§7] ------------------------------------------------------------------


async def test_iam_issues_a_project_token_in_the_documented_shape(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A right password gets 201, an "MII…" X-Subject-Token and a token body scoped to the named project."""
    status, answer, headers = await login(http, sim, password_body())
    assert status == 201
    token = headers["X-Subject-Token"]
    assert token.startswith("MII") and len(token) > 500
    body = answer["token"]
    assert body["issued_at"] == "2026-12-03T12:00:00.000000Z"
    assert body["expires_at"] == "2026-12-03T12:01:00.000000Z"
    assert body["methods"] == ["password"]
    assert (body["project"]["id"], body["project"]["name"], body["project"]["domain"]["name"]) == (
        P,
        "cn-north-4",
        "acme",
    )
    assert (body["user"]["name"], body["user"]["domain"]["name"]) == ("ops", "acme")
    assert body["catalog"] == []
    assert body["roles"] and all(set(role) == {"id", "name"} for role in body["roles"])


async def test_nocatalog_leaves_the_catalog_out(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """With ?nocatalog=true the token body has no catalog."""
    status, answer, _ = await login(http, sim, password_body(), "?nocatalog=true")
    assert status == 201
    assert "catalog" not in answer["token"]


async def test_a_project_can_be_scoped_by_id(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """scope.project.id names the project as well as its name does."""
    body = iam_token_request_body(PasswordCredentials(USER.name, USER.password, USER.domain), project_id=P2)
    status, answer, _ = await login(http, sim, body)
    assert (status, answer["token"]["project"]["name"]) == (201, "cn-east-3")


@pytest.mark.parametrize(
    ("password", "domain"),
    [("wrong", USER.domain), (USER.password, "another-account"), (USER.password + " ", USER.domain)],
)
async def test_wrong_password_or_account_is_401_without_a_token(
    sim: Simulator, http: aiohttp.ClientSession, password: str, domain: str
) -> None:
    """A wrong password (or account) is 401 in IAM's error shape, with no X-Subject-Token."""
    status, answer, headers = await login(http, sim, password_body(password, domain=domain))
    assert status == 401
    assert answer == {"error": {"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}}
    assert "X-Subject-Token" not in headers
    assert len(sim.iam.issued) == 0


async def test_scope_naming_an_unknown_project_or_a_mismatched_id_is_401(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A scope whose project is unknown, or whose name and id are two different projects, gets no token."""
    mismatched = password_body()
    mismatched["auth"]["scope"]["project"]["id"] = P2
    for body in (password_body(project="xx-nowhere-1"), mismatched):
        status, answer, _ = await login(http, sim, body)
        assert (status, answer["error"]["title"]) == (401, "Unauthorized")
    assert len(sim.iam.issued) == 0


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["auth"].pop("scope"),
        lambda b: b["auth"]["identity"].update(methods=["password", "totp"]),
        lambda b: b["auth"]["identity"]["password"]["user"].pop("domain"),
        lambda b: b["auth"]["identity"]["password"]["user"].update(password=""),
    ],
)
async def test_a_body_not_of_the_password_shape_is_400(
    sim: Simulator, http: aiohttp.ClientSession, change: Any
) -> None:
    """No project scope, MFA methods, no domain or an empty password are 400 Bad Request."""
    body = password_body()
    change(body)
    status, answer, _ = await login(http, sim, body)
    assert (status, answer["error"]["code"], answer["error"]["title"]) == (400, 400, "Bad Request")


async def test_an_issued_token_works_until_it_expires_then_is_401_apigw_0307(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock
) -> None:
    """An issued token is accepted within its lifetime and answered 401 APIGW.0307 from expires_at on."""
    sim.set_config(auth_mode="token")
    _, _, headers = await login(http, sim, password_body())
    token = {"X-Auth-Token": headers["X-Subject-Token"]}
    wall.advance(59.999)
    status, answer, _ = await send(http, "GET", list_url(sim), token)
    assert (status, answer["proxy_list"][0]["proxy"]["pool_id"]) == (200, X)
    wall.advance(0.001)
    status, answer, _ = await send(http, "GET", list_url(sim), token)
    assert (status, answer["error_code"], answer["error_msg"]) == (401, "APIGW.0307", "The token must be updated.")


async def test_a_token_is_valid_only_for_its_own_project(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A token scoped to one project is 401 APIGW.0301 on another project's path."""
    _, _, headers = await login(http, sim, password_body(project="cn-north-4"))
    token = {"X-Auth-Token": headers["X-Subject-Token"]}
    status, answer, _ = await send(http, "GET", list_url(sim, P2, I2), token)
    assert_refused(status, answer)
    status, _, _ = await send(http, "GET", list_url(sim, P, I1), token)
    assert status == 200


async def test_a_token_the_simulator_never_issued_is_refused(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """With no static tokens configured, only issued tokens pass: others are 401 "decrypt token fail"."""
    status, answer, _ = await send(http, "GET", list_url(sim), {"X-Auth-Token": "MIIforged"})
    assert_refused(status, answer)
    assert answer["error_msg"].endswith("decrypt token fail")


async def test_iam_login_needs_no_credentials_and_is_never_throttled(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """POST /v3/auth/tokens is answered without gateway credentials, and the service's 429/500 faults skip it."""
    sim.set_faults(throttle_429=1.0, error_500=1.0)
    status, _, _ = await login(http, sim, password_body())
    assert status == 201
    assert sim.stats.requests[-1].route == "iam_tokens"


# --- AK/SK [§6] ----------------------------------------------------------------------------------------


async def test_a_request_signed_with_a_known_key_is_accepted(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock
) -> None:
    """GET and PUT signed by `sign_request` with a configured key pair are accepted."""
    url = list_url(sim)
    status, _, _ = await send(http, "GET", url, signed("GET", url, wall))
    assert status == 200
    put = f"{sim.url}/v3/{P}/instances/{I1}/proxy/{X}/session-consistence"
    body = b'{"session_consistence": "true", "consistence_mode": "global"}'
    status, answer, _ = await send(http, "PUT", put, signed("PUT", put, wall, body), body)
    assert status == 200 and answer["job_id"]


async def test_a_tampered_body_is_a_signature_mismatch(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock
) -> None:
    """A body changed after signing is 401 APIGW.0301 "signature mismatch", and the answer holds no signature."""
    put = f"{sim.url}/v3/{P}/instances/{I1}/proxy/{X}/session-consistence"
    headers = signed("PUT", put, wall, b'{"session_consistence": "true"}')
    status, answer, _ = await send(http, "PUT", put, headers, b'{"session_consistence": "false"}')
    assert_refused(status, answer)
    assert answer["error_msg"].endswith("signature mismatch")
    assert headers["Authorization"].rsplit("=", 1)[1] not in answer["error_msg"]
    assert sim.stats.jobs_created == 0


async def test_a_tampered_signed_header_is_a_signature_mismatch(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock
) -> None:
    """Changing a signed header (X-Language) after signing is 401 APIGW.0301."""
    url = list_url(sim)
    headers = signed("GET", url, wall, extra={"X-Language": "en-us"}) | {"X-Language": "zh-cn"}
    status, answer, _ = await send(http, "GET", url, headers)
    assert_refused(status, answer)
    assert answer["error_msg"].endswith("signature mismatch")


@pytest.mark.parametrize(("skew", "accepted"), [(900, True), (-900, True), (901, False), (-901, False)])
async def test_x_sdk_date_may_be_at_most_15_minutes_off(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock, skew: float, accepted: bool
) -> None:
    """A signature dated within ±15 min of the simulator's wall clock passes; beyond, it has expired."""
    url = list_url(sim)
    status, answer, _ = await send(http, "GET", url, signed("GET", url, wall, skew=skew))
    if accepted:
        assert status == 200
    else:
        assert_refused(status, answer)
        assert answer["error_msg"].endswith("signature expired")


async def test_an_unknown_access_key_is_refused_without_echoing_it(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock
) -> None:
    """An AK the gateway does not know is 401 APIGW.0301 "ak not exist", and neither AK nor SK is echoed."""
    url = list_url(sim)
    other_ak, other_sk = "UNKNOWNAKEXAMPLE0000", "UNKNOWNSKEXAMPLE000000000000000000000000"
    status, answer, _ = await send(http, "GET", url, signed("GET", url, wall, ak=other_ak, sk=other_sk))
    assert_refused(status, answer)
    assert "ak not exist" in answer["error_msg"]
    assert other_ak not in answer["error_msg"] and other_sk not in answer["error_msg"]


async def test_a_missing_x_sdk_date_is_refused(sim: Simulator, http: aiohttp.ClientSession, wall: WallClock) -> None:
    """A signed request whose X-Sdk-Date was removed is 401 APIGW.0301 naming the missing header."""
    url = list_url(sim)
    headers = signed("GET", url, wall)
    del headers["X-Sdk-Date"]
    status, answer, _ = await send(http, "GET", url, headers)
    assert_refused(status, answer)
    assert answer["error_msg"].endswith("missing X-Sdk-Date header")


async def test_x_project_id_must_be_the_paths_project(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock
) -> None:
    """A correctly signed request whose X-Project-Id is another project is 401 APIGW.0301; the switch allows it."""
    url = list_url(sim)
    status, answer, _ = await send(http, "GET", url, signed("GET", url, wall, project=P2))
    assert_refused(status, answer)
    assert "X-Project-Id" in answer["error_msg"]
    sim.set_config(require_project_header=False)
    status, _, _ = await send(http, "GET", url, signed("GET", url, wall, project=P2))
    assert status == 200


async def test_a_temporary_key_needs_its_security_token_signed(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock
) -> None:
    """For a temporary key, X-Security-Token must be sent, signed and right; then the request passes."""
    sim.set_config(access_keys=(AccessKey(AK, SK, security_token="sts-token"),))
    url = list_url(sim)
    for extra, status_wanted in [
        ({}, 401),
        ({"X-Security-Token": "other"}, 401),
        ({"X-Security-Token": "sts-token"}, 200),
    ]:
        status, answer, _ = await send(http, "GET", url, signed("GET", url, wall, extra=extra))
        assert status == status_wanted
        assert status == 200 or "sts-token" not in answer["error_msg"]


async def test_more_than_five_consecutive_failures_lock_the_key_for_five_minutes(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock
) -> None:
    """The 6th consecutive failure locks the AK: even good signatures are refused until 5 minutes have passed."""
    url = list_url(sim)
    for _ in range(6):
        status, answer, _ = await send(http, "GET", url, signed("GET", url, wall, sk="wrong-secret-key"))
        assert answer["error_msg"].endswith("signature mismatch")
    status, answer, _ = await send(http, "GET", url, signed("GET", url, wall))
    assert_refused(status, answer)
    assert answer["error_msg"].endswith("AK access failed to reach the limit,forbidden.")
    wall.advance(299)
    status, _, _ = await send(http, "GET", url, signed("GET", url, wall))
    assert status == 401
    wall.advance(1)
    status, _, _ = await send(http, "GET", url, signed("GET", url, wall))
    assert status == 200


async def test_a_success_resets_the_failure_count(sim: Simulator, http: aiohttp.ClientSession, wall: WallClock) -> None:
    """Five failures, a success, five more failures: the failures were never more than five in a row."""
    url = list_url(sim)
    for good in [False] * 5 + [True] + [False] * 5:
        await send(http, "GET", url, signed("GET", url, wall, sk=SK if good else "wrong-secret-key"))
    status, _, _ = await send(http, "GET", url, signed("GET", url, wall))
    assert status == 200
    assert sim.lockout.failures(AK) == 0


async def test_in_both_mode_a_bad_signature_is_reported_not_the_missing_token(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock
) -> None:
    """When both modes are on, a request with only a bad signature gets the signature's error."""
    url = list_url(sim)
    status, answer, _ = await send(http, "GET", url, signed("GET", url, wall, sk="wrong-secret-key"))
    assert_refused(status, answer)
    assert answer["error_msg"].endswith("signature mismatch")
    status, answer, _ = await send(http, "GET", url, {})
    assert answer["error_msg"].endswith("x-auth-token not found")


async def test_aksk_mode_refuses_tokens_and_token_mode_refuses_signatures(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock
) -> None:
    """In "aksk" mode a valid token is not enough; in "token" mode a valid signature is not enough."""
    _, _, headers = await login(http, sim, password_body())
    url = list_url(sim)
    sim.set_config(auth_mode="aksk")
    status, answer, _ = await send(http, "GET", url, {"X-Auth-Token": headers["X-Subject-Token"]})
    assert_refused(status, answer)
    sim.set_config(auth_mode="token")
    status, answer, _ = await send(http, "GET", url, signed("GET", url, wall))
    assert_refused(status, answer)


# --- set-up from the client's environment ----------------------------------------------------------------

AKSK_ENV = {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}
TOKEN_ENV = {"HUAWEICLOUD_AUTH_TOKEN": "MIIenvtoken"}
USER_ENV = {"HUAWEICLOUD_USERNAME": "ops", "HUAWEICLOUD_PASSWORD": "s3cret pass", "HUAWEICLOUD_DOMAIN_NAME": "acme"}


def test_nothing_set_accepts_any_token() -> None:
    """With no credential variables the simulator keeps accepting any non-empty token."""
    auth = simulator_auth_from_env({})
    config = auth.apply(SimulatorConfig(job_duration=3.0))
    assert (config.auth_mode, config.tokens, config.access_keys, config.iam_users) == ("token", None, (), ())
    assert config.job_duration == 3.0
    assert auth.describe() == "any non-empty X-Auth-Token"


@pytest.mark.parametrize(
    ("env", "mode", "tokens", "keys", "users"),
    [
        (AKSK_ENV, "aksk", frozenset(), 1, 0),
        (TOKEN_ENV, "token", frozenset({"MIIenvtoken"}), 0, 0),
        (USER_ENV, "token", frozenset(), 0, 1),
        (TOKEN_ENV | USER_ENV, "token", frozenset({"MIIenvtoken"}), 0, 1),
        (AKSK_ENV | TOKEN_ENV | USER_ENV, "both", frozenset({"MIIenvtoken"}), 1, 1),
    ],
)
def test_every_group_that_is_set_is_accepted(
    env: dict[str, str], mode: str, tokens: frozenset[str], keys: int, users: int
) -> None:
    """Each credential group in the environment becomes an accepted key pair, token or IAM user."""
    config = simulator_auth_from_env(env, projects={"cn-north-4": P}).apply(SimulatorConfig())
    assert (config.auth_mode, config.tokens, len(config.access_keys), len(config.iam_users)) == (
        mode,
        tokens,
        keys,
        users,
    )
    assert config.iam_projects == {"cn-north-4": P}


def test_the_key_pair_comes_from_the_sdk_credentials_file_too() -> None:
    """With no AK/SK variables, the [basic] section of the SDK credentials file gives the key pair."""
    files = {"~/.huaweicloud/credentials": f"[basic]\nak = {AK}\nsk = {SK}\nsecurity_token = sts\n"}
    config = simulator_auth_from_env({}, files.get).apply(SimulatorConfig())
    assert config.auth_mode == "aksk"
    assert config.access_keys == (AccessKey(AK, SK, "sts"),)


def test_a_half_set_group_is_the_clients_usage_error() -> None:
    """A group with a variable missing raises the same UsageError the client would."""
    with pytest.raises(UsageError, match="HUAWEICLOUD_SDK_SK"):
        simulator_auth_from_env({"HUAWEICLOUD_SDK_AK": AK})
    with pytest.raises(UsageError, match="HUAWEICLOUD_DOMAIN_NAME"):
        simulator_auth_from_env({"HUAWEICLOUD_USERNAME": "ops", "HUAWEICLOUD_PASSWORD": "p"})


def test_the_description_shows_no_secret() -> None:
    """describe() and the config's repr name the credentials without SK, token or password."""
    auth = simulator_auth_from_env(AKSK_ENV | TOKEN_ENV | USER_ENV)
    shown = auth.describe() + repr(auth.apply(SimulatorConfig()))
    for secret in (SK, "MIIenvtoken", "s3cret pass", AK):
        assert secret not in shown
    assert "ops" in shown


async def test_one_exported_setup_serves_client_and_simulator(http: aiohttp.ClientSession, wall: WallClock) -> None:
    """A simulator set up from the environment accepts a request signed with that environment's key pair."""
    fleet = Fleet()
    fleet.add_proxy(P, I1, X, "eventual")
    config = simulator_auth_from_env(AKSK_ENV).apply(SimulatorConfig())
    async with Simulator(fleet, config, wall_clock=wall) as sim:
        url = list_url(sim)
        status, _, _ = await send(http, "GET", url, signed("GET", url, wall))
        assert status == 200
        status, _, _ = await send(http, "GET", url, {"X-Auth-Token": "MIIanything"})
        assert status == 401


async def test_the_lock_follows_the_contract_letter_more_than_five_failures(
    sim: Simulator, http: aiohttp.ClientSession, wall: WallClock
) -> None:
    """Contract §6, "> 5 consecutive AK/SK failures lock the AK": five failures lock nothing (a good 6th request
    passes); the 6th failure locks the key, so the 7th request is refused even when correctly signed."""
    url = list_url(sim)
    for _ in range(5):
        await send(http, "GET", url, signed("GET", url, wall, sk="wrong-secret-key"))
    assert sim.lockout.failures(AK) == 5 and not sim.lockout.locked(AK, wall.now)
    status, _, _ = await send(http, "GET", url, signed("GET", url, wall))
    assert status == 200
    for _ in range(5):
        await send(http, "GET", url, signed("GET", url, wall, sk="wrong-secret-key"))
    status, answer, _ = await send(http, "GET", url, signed("GET", url, wall, sk="wrong-secret-key"))
    assert answer["error_msg"].endswith("signature mismatch")  # the 6th failure is judged, then locks
    assert sim.lockout.locked(AK, wall.now)
    status, answer, _ = await send(http, "GET", url, signed("GET", url, wall))
    assert_refused(status, answer)
    assert answer["error_msg"].endswith("AK access failed to reach the limit,forbidden.")
