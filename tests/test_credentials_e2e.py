"""apply end to end against the simulator in each credential mode, the way the CLI wires it (issue 3)."""

from __future__ import annotations

from dataclasses import replace

from fakes import PROJECT, instance_id, make_plan, proxy_id

from orchestrator.connect import Overrides, connection
from orchestrator.errors import ExitCode
from orchestrator.plan import JobSettings, Limits, Plan, Rate, RetrySettings, Target
from orchestrator.report import Outcome, TargetOutcome
from orchestrator.run import RunOptions, RunResult, execute
from orchestrator.simulator import AccessKey, Fleet, IamUser, Simulator, SimulatorConfig

AK, SK = "SIMAKEXAMPLE00000001", "SIMSKEXAMPLE0000000000000000000000000001"
USER, PASSWORD, DOMAIN = "ops-bot", "correct horse battery", "acme"
FAST = dict(
    retry=RetrySettings(attempts=4, base_delay=0.01, max_delay=0.05, timeout=2.0),
    jobs=JobSettings(poll_interval=0.02, timeout=10.0, visibility_grace=2.0),
)


def fleet_and_plan(url: str, count: int, rate: float = 200.0) -> tuple[Fleet, Plan]:
    fleet = Fleet()
    targets = []
    for n in range(count):
        fleet.add_proxy(PROJECT, instance_id(n), proxy_id(n), "eventual")
        targets.append(Target(PROJECT, instance_id(n), proxy_id(n), "global"))
    plan = make_plan(targets, endpoint=url, limits=Limits(Rate(int(rate), 1.0), 8, 1), **FAST)  # type: ignore[arg-type]
    return fleet, plan


async def run_with(
    config: SimulatorConfig, env: dict[str, str], count: int = 6, rate: float = 200.0, hook=None
) -> tuple[RunResult, Simulator, list[str]]:
    fleet, _ = fleet_and_plan("http://127.0.0.1:1", count)
    secrets_seen: list[str] = []
    async with Simulator(fleet, config) as sim:
        _, plan = fleet_and_plan(sim.url, count, rate)
        async with connection(plan, Overrides(iam_endpoint=sim.url), env, lambda _p: None) as conn:

            def on_outcome(outcome: TargetOutcome) -> None:
                if hook is not None:
                    hook(sim, outcome)

            result = await execute(plan, conn, RunOptions(command="apply"), on_outcome=on_outcome)
            secrets_seen = list(conn.auth.secrets())
    return result, sim, secrets_seen


async def test_aksk_mode_signs_every_request() -> None:
    """With AK/SK in the environment every request is signed and accepted; all targets are submitted."""
    config = SimulatorConfig(auth_mode="aksk", access_keys=(AccessKey(AK, SK),), job_duration=0.02)
    result, sim, _ = await run_with(config, {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK})
    assert result.exit_code == ExitCode.OK and result.count(Outcome.SUBMITTED) == 6
    assert sim.stats.count(status=401) == 0


async def test_aksk_temporary_keys() -> None:
    """Temporary keys (with a security token) are accepted when the token is sent and signed."""
    key = AccessKey(AK, SK, security_token="STS-temporary-token-0001")
    config = SimulatorConfig(auth_mode="aksk", access_keys=(key,), job_duration=0.02)
    env = {
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": "STS-temporary-token-0001",
    }
    result, _, _ = await run_with(config, env)
    assert result.count(Outcome.SUBMITTED) == 6


async def test_a_wrong_secret_key_costs_exactly_one_refused_request() -> None:
    """A bad SK stops the run after one 401: the key is never hammered toward the gateway's 5-failure lock."""
    config = SimulatorConfig(auth_mode="aksk", access_keys=(AccessKey(AK, SK),))
    result, sim, _ = await run_with(
        config, {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": "wrong" + SK[5:]}, count=20
    )
    assert sim.stats.count() == 1 and sim.stats.count(status=401) == 1
    assert result.exit_code == ExitCode.USAGE and result.auth_failure and "APIGW.0301" in result.auth_failure
    assert result.count(Outcome.NOT_STARTED) >= 19 - 1


async def test_static_token_mode() -> None:
    """A ready token from HUAWEICLOUD_AUTH_TOKEN is sent as X-Auth-Token and accepted."""
    token = "MIIstatic-token-for-e2e-0001"
    config = SimulatorConfig(tokens=frozenset({token}), job_duration=0.02)
    result, _, _ = await run_with(config, {"HUAWEICLOUD_AUTH_TOKEN": token})
    assert result.count(Outcome.SUBMITTED) == 6


async def test_static_token_expiring_mid_run_stops_dispatch() -> None:
    """A static token that expires mid-run cannot be refreshed: dispatch stops, the rest is not started."""
    token = "MIIstatic-token-for-e2e-0002"
    config = SimulatorConfig(tokens=frozenset({token}), job_duration=0.02)

    def expire_after_three(sim: Simulator, outcome: TargetOutcome) -> None:
        if outcome.outcome is Outcome.SUBMITTED and sum(sim.stats.jobs_by_proxy.values()) == 3:
            sim.set_config(expired_tokens=frozenset({token}))

    result, _, _ = await run_with(config, {"HUAWEICLOUD_AUTH_TOKEN": token}, count=30, rate=30, hook=expire_after_three)
    assert result.count(Outcome.SUBMITTED) >= 3
    assert result.count(Outcome.NOT_STARTED) > 0
    assert result.auth_failure and "APIGW.0307" in result.auth_failure
    assert result.exit_code == ExitCode.FAILED_TARGETS  # some changes went through: not a pure usage error


async def test_iam_password_mode_logs_in_once() -> None:
    """With an IAM user in the environment the run logs in once at IAM and uses that token for every call."""
    config = SimulatorConfig(
        iam_users=(IamUser(USER, PASSWORD, DOMAIN),), iam_projects={"cn-north-4": PROJECT}, job_duration=0.02
    )
    env = {"HUAWEICLOUD_USERNAME": USER, "HUAWEICLOUD_PASSWORD": PASSWORD, "HUAWEICLOUD_DOMAIN_NAME": DOMAIN}
    result, sim, secrets = await run_with(config, env, count=10)
    assert result.count(Outcome.SUBMITTED) == 10
    assert sim.stats.count(route="iam_tokens") == 1
    assert PASSWORD in secrets and len(secrets) == 2  # the password and the one token


async def test_iam_token_expiring_mid_run_is_refreshed() -> None:
    """A 1-second IAM token expires during a 3-second run: it is refreshed and every target still succeeds."""
    config = SimulatorConfig(
        iam_users=(IamUser(USER, PASSWORD, DOMAIN),),
        iam_projects={"cn-north-4": PROJECT},
        token_lifetime=1.0,
        job_duration=0.02,
    )
    env = {"HUAWEICLOUD_USERNAME": USER, "HUAWEICLOUD_PASSWORD": PASSWORD, "HUAWEICLOUD_DOMAIN_NAME": DOMAIN}
    result, sim, _ = await run_with(config, env, count=30, rate=20)
    assert result.exit_code == ExitCode.OK and result.count(Outcome.SUBMITTED) == 30
    assert sim.stats.count(route="iam_tokens") >= 3
    assert result.auth_failure is None


async def test_wrong_iam_password_is_a_clear_usage_error() -> None:
    """IAM refusing the password stops the run before any proxy call: exit 2, the password never shown."""
    config = SimulatorConfig(iam_users=(IamUser(USER, PASSWORD, DOMAIN),), iam_projects={"cn-north-4": PROJECT})
    env = {"HUAWEICLOUD_USERNAME": USER, "HUAWEICLOUD_PASSWORD": "not-the-password", "HUAWEICLOUD_DOMAIN_NAME": DOMAIN}
    result, sim, _ = await run_with(config, env)
    assert result.exit_code == ExitCode.USAGE
    assert result.auth_failure and "IAM refused the password login of user ops-bot" in result.auth_failure
    assert "not-the-password" not in result.auth_failure
    assert sim.stats.count(route="list_proxies") == 0


def test_config_is_replaceable() -> None:
    """SimulatorConfig stays a frozen value that tests change with dataclasses.replace."""
    config = replace(SimulatorConfig(), token_lifetime=2.0)
    assert config.token_lifetime == 2.0
