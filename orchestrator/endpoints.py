"""Where the GaussDB(for MySQL) / TaurusDB API lives: the region table and endpoint checks. Pure.

The table is api-contract §4 (SDK 3.1.219 `GaussDBRegion`): every region is served at
`https://{prefix}.{region}.myhuaweicloud.com`, with one of three host prefixes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit

_PREFIX_REGIONS: Final[dict[str, tuple[str, ...]]] = {
    "gaussdb": (
        "cn-north-4", "cn-north-2", "cn-north-9", "cn-east-3", "cn-south-1", "cn-south-4",
        "cn-southwest-2", "ru-northwest-2", "ap-southeast-3", "ap-southeast-4", "sa-brazil-1",
    ),
    "gaussdbformysql": ("tr-west-1", "ap-southeast-1", "ap-southeast-2", "cn-north-11", "me-east-1"),
    "gaussdb-mysql": ("af-south-1", "cn-east-5", "la-north-2", "cn-southwest-3"),
}  # fmt: skip

#: region id -> host prefix, for every region the contract knows.
KNOWN_REGIONS: Final[Mapping[str, str]] = MappingProxyType(
    {region: prefix for prefix, regions in _PREFIX_REGIONS.items() for region in regions}
)

#: A plausible region id (cn-north-4, ap-southeast-1, sa-brazil-1); ASCII only, no trailing newline.
REGION_RE: Final = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]+")

_LOOPBACK_NAMES: Final = frozenset({"localhost"})


def endpoint_for_region(region: str) -> str:
    """The API endpoint of a known region, e.g. `https://gaussdb.cn-north-4.myhuaweicloud.com`."""
    prefix = KNOWN_REGIONS.get(region)
    if prefix is None:
        raise ValueError(f"unknown region {region!r}; known: {', '.join(sorted(KNOWN_REGIONS))}")
    return f"https://{prefix}.{region}.myhuaweicloud.com"


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: the only hosts plain http may talk to (a local simulator)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_USERINFO = re.compile(r"(?<=//)[^/?#]*@")


def without_userinfo(url: str) -> str:
    """`url` fit to quote in a message: a user:password@ part (which check_endpoint refuses) is masked."""
    return _USERINFO.sub("***@", url)


def check_endpoint(url: str) -> str:
    """Return `url` as `scheme://host[:port]` or raise ValueError saying what is wrong with it.

    https only, except plain http to a loopback host (a local simulator). No user:password@ (credentials
    never go in URLs), no query, no fragment, and no path: the client appends `/v3/...` itself.
    """
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        raise ValueError("the endpoint must be plain ASCII without spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced [ in an IPv6 host
        raise ValueError(f"the endpoint is not a valid URL: {without_userinfo(url)[:40]!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError(f"the endpoint must start with https://, got {without_userinfo(url)[:40]!r}")
    if "@" in parts.netloc:
        raise ValueError("the endpoint must not contain user:password@ (use credentials, not the URL)")
    host = parts.hostname or ""
    if not host:
        raise ValueError("the endpoint has no host")
    try:
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number in 0..65535
    except ValueError:
        raise ValueError("the endpoint has an invalid port") from None
    if "?" in url or "#" in url:
        raise ValueError("the endpoint must not have a query (?...) or fragment (#...)")
    if parts.path not in ("", "/"):
        raise ValueError(f"the endpoint must not have a path, got {parts.path[:40]!r}")
    if scheme == "http" and not is_loopback_host(host):
        raise ValueError("plain http is only allowed to localhost, 127.0.0.0/8 or ::1; use https")
    return f"{scheme}://{parts.netloc}"
