"""Where a run's requests and its password login go (issue 3: CLI > plan > environment > region)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fakes import make_plan

from orchestrator.api import IamClient
from orchestrator.connect import IAM_ENDPOINT_ENV, Overrides, connection, iam_endpoint_and_origin, resolve_iam_endpoint
from orchestrator.credentials import PasswordCredentials
from orchestrator.errors import AuthError, UsageError

PLAN = replace(make_plan([]), path="p.yaml", region="cn-north-4", iam_endpoint=None)
CLI, IN_PLAN, IN_ENV = "https://iam.cli.example.com", "https://iam.plan.example.com", "https://iam.env.example.com"


@pytest.mark.parametrize(
    ("override", "in_plan", "env", "expected"),
    [
        (CLI, IN_PLAN, {IAM_ENDPOINT_ENV: IN_ENV}, CLI),
        (None, IN_PLAN, {IAM_ENDPOINT_ENV: IN_ENV}, IN_PLAN),
        (None, None, {IAM_ENDPOINT_ENV: IN_ENV}, IN_ENV),
        (None, None, {IAM_ENDPOINT_ENV: "  "}, "https://iam.cn-north-4.myhuaweicloud.com"),
        (None, None, {}, "https://iam.cn-north-4.myhuaweicloud.com"),
    ],
)
def test_the_iam_endpoint_follows_the_order_of_precedence(
    override: str | None, in_plan: str | None, env: dict[str, str], expected: str
) -> None:
    """--iam-endpoint, then the plan's iam_endpoint, then $HUAWEICLOUD_SDK_IAM_ENDPOINT, then the region's."""
    assert resolve_iam_endpoint(replace(PLAN, iam_endpoint=in_plan), override, env) == expected


def test_a_bad_iam_endpoint_names_where_it_came_from() -> None:
    """A remote http:// IAM endpoint is a usage error that says which setting holds it."""
    with pytest.raises(UsageError, match=r"^IAM endpoint from \$HUAWEICLOUD_SDK_IAM_ENDPOINT: plain http"):
        resolve_iam_endpoint(PLAN, None, {IAM_ENDPOINT_ENV: "http://iam.example.com"})
    with pytest.raises(UsageError, match=r"^IAM endpoint from --iam-endpoint: "):
        resolve_iam_endpoint(PLAN, "ftp://iam.example.com", {})


def test_without_a_region_the_iam_endpoint_must_be_set() -> None:
    """A plan with only an endpoint has no region to derive IAM from: the error says what to set."""
    with pytest.raises(UsageError, match=r"^p\.yaml: IAM endpoint unknown: .* set iam_endpoint, --iam-endpoint or"):
        resolve_iam_endpoint(replace(PLAN, region=None), None, {})


async def test_a_bad_iam_endpoint_flag_is_refused_even_with_aksk() -> None:
    """--iam-endpoint is checked when given, even though AK/SK credentials never log in at IAM."""
    env = {"HUAWEICLOUD_SDK_AK": "A" * 20, "HUAWEICLOUD_SDK_SK": "S" * 40}
    with pytest.raises(UsageError, match=r"^IAM endpoint from --iam-endpoint: "):
        async with connection(PLAN, Overrides(iam_endpoint="x y"), env, lambda _path: None):
            pass


def test_the_origin_of_the_iam_endpoint_is_named() -> None:
    """Which setting chose the IAM endpoint travels with it: the flag, the plan's key, the variable, the region."""
    in_plan = replace(PLAN, iam_endpoint=IN_PLAN)
    assert iam_endpoint_and_origin(in_plan, CLI, {}) == (CLI, "--iam-endpoint")
    assert iam_endpoint_and_origin(in_plan, None, {}) == (IN_PLAN, "p.yaml: iam_endpoint")
    assert iam_endpoint_and_origin(PLAN, None, {IAM_ENDPOINT_ENV: IN_ENV}) == (IN_ENV, "$HUAWEICLOUD_SDK_IAM_ENDPOINT")
    assert iam_endpoint_and_origin(PLAN, None, {})[1] == "p.yaml: region"


async def test_an_iam_endpoint_that_does_not_answer_is_named_with_its_origin() -> None:
    """A dead IAM endpoint fails the login after its attempts, saying where the endpoint was set."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    creds = PasswordCredentials("ops", "pw-not-shown-123", "acme", source="environment")
    async with IamClient("http://127.0.0.1:9", timeout=2.0, sleep=sleep, origin="$HUAWEICLOUD_SDK_IAM_ENDPOINT") as iam:
        with pytest.raises(AuthError) as caught:
            await iam.login(creds, "0" * 32)
    message = str(caught.value)
    assert message.startswith("IAM at http://127.0.0.1:9 (from $HUAWEICLOUD_SDK_IAM_ENDPOINT) did not answer (connect")
    assert "pw-not-shown-123" not in message and slept == [0.5, 1.0]
