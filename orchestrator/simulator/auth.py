"""Who may call the simulated service: one pluggable check run on every request before the backend.

An `Authenticator` sees the whole request as it came off the wire (`WireRequest`: method, raw path and
query, headers, body bytes, host) plus the wall-clock time, so AK/SK signature verification
(SDK-HMAC-SHA256, contract §6, with the ±15 min skew rule) can be added as another implementation, and
`AnyOf` combines several (token or signature). It returns the caller's identity or raises a
`GatewayError` (401 APIGW.0301 / APIGW.0307, contract §7, §8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .errors import ApiError, token_expired, unauthorized

TOKEN_HEADER = "X-Auth-Token"  # noqa: S105 - a header name, not a secret


@dataclass(frozen=True, slots=True)
class WireRequest:
    """A request exactly as received, for checks that must see the bytes (signatures)."""

    method: str
    path: str  # raw (still percent-encoded), without the query
    query_string: str  # raw, without "?"
    headers: Mapping[str, str]  # case-insensitive (a multidict from the server)
    body: bytes
    host: str


class Authenticator(Protocol):
    def authenticate(self, request: WireRequest, now: datetime) -> str:
        """Return the caller's identity, or raise `GatewayError`."""
        ...


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """IAM token auth: `X-Auth-Token` must be present, not expired, and (if `tokens` is set) one of them."""

    tokens: frozenset[str] | None = None  # None: any non-empty token is accepted
    expired: frozenset[str] = frozenset()

    def authenticate(self, request: WireRequest, now: datetime) -> str:
        token = request.headers.get(TOKEN_HEADER, "").strip()
        if not token:
            raise unauthorized("x-auth-token not found")
        if token in self.expired:
            raise token_expired()
        if self.tokens is not None and token not in self.tokens:
            raise unauthorized("decrypt token fail")
        return f"token:{token[:6]}"


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Accept the request if any authenticator accepts it; otherwise raise the first one's error."""

    authenticators: Sequence[Authenticator]

    def authenticate(self, request: WireRequest, now: datetime) -> str:
        first: ApiError | None = None
        for authenticator in self.authenticators:
            try:
                return authenticator.authenticate(request, now)
            except ApiError as error:
                first = first or error
        assert first is not None, "AnyOf needs at least one authenticator"
        raise first
