"""The region table and endpoint checks (api-contract §4)."""

from __future__ import annotations

import pytest

from orchestrator.endpoints import (
    KNOWN_REGIONS,
    REGION_RE,
    check_endpoint,
    endpoint_for_region,
    is_loopback_host,
)


@pytest.mark.parametrize(
    ("region", "url"),
    [
        ("cn-north-4", "https://gaussdb.cn-north-4.myhuaweicloud.com"),
        ("ap-southeast-1", "https://gaussdbformysql.ap-southeast-1.myhuaweicloud.com"),
        ("af-south-1", "https://gaussdb-mysql.af-south-1.myhuaweicloud.com"),
        ("sa-brazil-1", "https://gaussdb.sa-brazil-1.myhuaweicloud.com"),
        ("cn-southwest-3", "https://gaussdb-mysql.cn-southwest-3.myhuaweicloud.com"),
    ],
)
def test_endpoint_for_region_uses_the_contract_host_prefix(region: str, url: str) -> None:
    """Each known region maps to https://{prefix}.{region}.myhuaweicloud.com with its own prefix."""
    assert endpoint_for_region(region) == url


def test_known_regions_is_the_whole_contract_table() -> None:
    """All 20 regions of the contract table are known, with one of the three prefixes."""
    assert len(KNOWN_REGIONS) == 20
    assert set(KNOWN_REGIONS.values()) == {"gaussdb", "gaussdbformysql", "gaussdb-mysql"}
    assert all(REGION_RE.fullmatch(region) for region in KNOWN_REGIONS)


def test_endpoint_for_an_unknown_region_is_a_value_error() -> None:
    """An unknown region raises ValueError naming it and listing the known ones."""
    with pytest.raises(ValueError, match=r"unknown region 'xx-yy-9'; known: af-south-1, "):
        endpoint_for_region("xx-yy-9")


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://gaussdb.cn-north-4.myhuaweicloud.com", "https://gaussdb.cn-north-4.myhuaweicloud.com"),
        ("https://gaussdb.cn-north-4.myhuaweicloud.com/", "https://gaussdb.cn-north-4.myhuaweicloud.com"),
        ("HTTPS://example.com:8443/", "https://example.com:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.3.4.5:8080/", "http://127.3.4.5:8080"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://LocalHost", "http://LocalHost"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
    ],
)
def test_check_endpoint_accepts_and_normalizes(url: str, normalized: str) -> None:
    """https URLs and plain http to loopback hosts pass, without their trailing slash."""
    assert check_endpoint(url) == normalized


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com", "plain http is only allowed to localhost"),
        ("http://128.0.0.1", "plain http is only allowed to localhost"),
        ("http://localhost.evil.com", "plain http is only allowed to localhost"),
        ("http://[::2]", "plain http is only allowed to localhost"),
        ("ftp://example.com", "must start with https://"),
        ("example.com", "must start with https://"),
        ("", "must start with https://"),
        ("https://user:pw@example.com", "user:password@"),
        ("https://user@example.com", "user:password@"),
        ("https://example.com?x=1", "query"),
        ("https://example.com/?", "query"),
        ("https://example.com#frag", "fragment"),
        ("https://example.com/v3", "must not have a path, got '/v3'"),
        ("https://example.com//", "must not have a path"),
        ("https://", "no host"),
        ("https://:443", "no host"),
        ("https://example.com:99999", "invalid port"),
        ("https://example.com:abc", "invalid port"),
        ("https://[::1", "not a valid URL"),
        ("https://exa mple.com", "without spaces"),
        ("https://example.com\n", "without spaces"),
        ("https://ex\x00ample.com", "control characters"),
        ("https://gaussdb.cn-north-4.myhuaweicl\u043eud.com", "plain ASCII"),
    ],
)
def test_check_endpoint_rejects_unsafe_urls(url: str, why: str) -> None:
    """Non-https (except loopback), credentials, queries, fragments, paths and odd characters are refused."""
    with pytest.raises(ValueError, match=why.replace("?", r"\?")):
        check_endpoint(url)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("10.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104  # a host string under test, not a bind address
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    """Only localhost, 127.0.0.0/8 and ::1 count as loopback."""
    assert is_loopback_host(host) is loopback
