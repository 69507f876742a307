"""Credentials on the wire. The API module asks an `Authenticator` for the headers of each attempt at send
time (after the governor's wait), so a signature or a token is always fresh when it leaves.

This module holds the token form (contract §5: `X-Auth-Token: <X-Subject-Token value>`, no Authorization and
no X-Sdk-Date). AK/SK signing and IAM password login plug in behind the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Authenticator(Protocol):
    kind: str

    async def headers(self, method: str, url: str, body: bytes) -> Mapping[str, str]:
        """Headers that authenticate this one attempt."""
        ...

    def describe(self) -> str:
        """What kind of credentials are in use, for humans; never the secret itself."""
        ...


class StaticToken:
    """A ready IAM token, e.g. from HUAWEICLOUD_AUTH_TOKEN. It cannot be refreshed."""

    kind = "token"
    __slots__ = ("_source", "_token")

    def __init__(self, token: str, *, source: str = "environment") -> None:
        if not token or any(c in token for c in "\r\n\0"):
            raise ValueError("the token is empty or contains line breaks")
        self._token = token
        self._source = source

    async def headers(self, method: str, url: str, body: bytes) -> Mapping[str, str]:
        return {"X-Auth-Token": self._token}

    def describe(self) -> str:
        return f"IAM token ({len(self._token)} characters, from {self._source})"

    def __repr__(self) -> str:
        return f"StaticToken(<{len(self._token)} characters hidden>)"
