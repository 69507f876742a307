"""Where a run's requests and its password login go (issue 3: CLI > plan > environment > region)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fakes import make_plan

from orchestrator.connect import IAM_ENDPOINT_ENV, Overrides, connection, resolve_iam_endpoint
from orchestrator.errors import UsageError

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
