"""Credentials on the wire. The API module asks an `Authenticator` to authorize each attempt at send time
(after the governor's wait), so a signature or a token is always fresh when it leaves.

Three kinds, as the real cloud accepts them (contract §5–§7):
  * `AkSkSigner`: SDK-HMAC-SHA256 signature of every attempt with a fresh X-Sdk-Date (`signing.py`);
    temporary keys add X-Security-Token, signed. A 401 means a bad key or signature: never retried, since the
    gateway locks a key after 5 failures.
  * `StaticToken`: a ready IAM token sent as X-Auth-Token. It cannot be refreshed.
  * `IamPasswordAuth`: logs in at IAM for a project-scoped token, once per project, shared by all calls;
    refreshed once, for everybody, when it nears `expires_at` or when the gateway answers 401 APIGW.0307.

`recover()` tells the API module whether one more attempt with fresh credentials may succeed after a 401.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from .credentials import AkSkCredentials, PasswordCredentials
from .errors import AuthError
from .signing import sign_request

# Header names and an error code, not secrets (hence the S105 waivers).
TOKEN_HEADER = "X-Auth-Token"  # noqa: S105
SECURITY_TOKEN_HEADER = "X-Security-Token"  # noqa: S105
TOKEN_EXPIRED_CODE = "APIGW.0307"  # noqa: S105 - "The token must be updated." (contract §7, §8)
# Refresh a token this long before it expires: 5 minutes, or a tenth of its lifetime for short-lived tokens
# (the simulator's, in tests), so that a fresh token is never already "about to expire".
REFRESH_MARGIN = timedelta(minutes=5)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# What the CLI calls each kind when it says which one a run uses (never the secret).
KIND_LABELS: Final = {"aksk": "AK/SK", "token": "IAM token", "password": "IAM password"}


class Authenticator(Protocol):
    kind: str  # a key of KIND_LABELS; also the report's run_started.credentials

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, project_id: str
    ) -> dict[str, str]:
        """The complete headers for this one attempt: `headers` plus whatever authenticates it."""
        ...

    async def recover(self, status: int, error_code: str | None, project_id: str, sent: Mapping[str, str]) -> bool:
        """After a 401 to a request sent with `sent`: True if one more attempt with fresh credentials may work."""
        ...

    def describe(self) -> str:
        """What kind of credentials are in use, for humans; never the secret itself."""
        ...

    def secrets(self) -> tuple[str, ...]:
        """Every secret value in use now, so output can be scrubbed of it."""
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

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, project_id: str
    ) -> dict[str, str]:
        return {**headers, TOKEN_HEADER: self._token}

    async def recover(self, status: int, error_code: str | None, project_id: str, sent: Mapping[str, str]) -> bool:
        return False  # nothing to refresh: the run stops and says so

    def describe(self) -> str:
        return f"IAM token ({len(self._token)} characters, from {self._source})"

    def secrets(self) -> tuple[str, ...]:
        return (self._token,)

    def __repr__(self) -> str:
        return f"StaticToken(<{len(self._token)} characters hidden>)"


class AkSkSigner:
    """Signs every attempt with the access key pair, at send time, with a fresh X-Sdk-Date."""

    kind = "aksk"
    __slots__ = ("_clock", "_creds")

    def __init__(self, creds: AkSkCredentials, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._creds = creds
        self._clock = clock

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, project_id: str
    ) -> dict[str, str]:
        to_sign = {name: value for name, value in headers.items() if name.lower() != "x-sdk-date"}
        if self._creds.security_token:
            to_sign[SECURITY_TOKEN_HEADER] = self._creds.security_token
        return sign_request(method, url, to_sign, body, ak=self._creds.ak, sk=self._creds.sk, now=self._clock())

    async def recover(self, status: int, error_code: str | None, project_id: str, sent: Mapping[str, str]) -> bool:
        return False  # a refused signature is not retried: 5 failures lock the key for 5 minutes

    def describe(self) -> str:
        return self._creds.describe()

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._creds.sk, self._creds.security_token) if s)

    def __repr__(self) -> str:
        return f"AkSkSigner({self._creds!r})"


@dataclass(frozen=True, slots=True, repr=False)
class IssuedToken:
    value: str
    expires_at: datetime
    issued_at: datetime

    def refresh_due(self, now: datetime) -> bool:
        margin = min(REFRESH_MARGIN, (self.expires_at - self.issued_at) / 10)
        return now >= self.expires_at - margin

    def __repr__(self) -> str:
        return f"IssuedToken(<hidden>, expires_at={self.expires_at.isoformat()})"


Login = Callable[[PasswordCredentials, str], Awaitable[IssuedToken]]


@dataclass(slots=True)
class IamPasswordAuth:
    """Project-scoped IAM tokens from a password, one login per project, shared by every concurrent call."""

    creds: PasswordCredentials
    login: Login  # (credentials, project_id) -> token; the HTTP lives in api.py
    clock: Callable[[], datetime] = _utcnow
    kind: str = "password"
    logins: int = 0
    _tokens: dict[str, IssuedToken] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _refused: AuthError | None = None

    async def authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, project_id: str
    ) -> dict[str, str]:
        token = await self._token(project_id)
        return {**headers, TOKEN_HEADER: token.value}

    async def recover(self, status: int, error_code: str | None, project_id: str, sent: Mapping[str, str]) -> bool:
        if status != 401 or error_code != TOKEN_EXPIRED_CODE:
            return False
        await self._token(project_id, stale=sent.get(TOKEN_HEADER))
        return True

    async def _token(self, project_id: str, *, stale: str | None = None) -> IssuedToken:
        # Every caller queues on the project's lock: the first one logs in, the others find the new token.
        async with self._locks.setdefault(project_id, asyncio.Lock()):
            current = self._tokens.get(project_id)
            if current is not None and current.value != stale and not current.refresh_due(self.clock()):
                return current
            if self._refused is not None:
                raise self._refused  # IAM said no once: asking again would only risk locking the user
            try:
                token = await self.login(self.creds, project_id)
            except AuthError as exc:
                self._refused = exc
                raise
            self.logins += 1
            self._tokens[project_id] = token
            return token

    def describe(self) -> str:
        return self.creds.describe()

    def secrets(self) -> tuple[str, ...]:
        return (self.creds.password, *(t.value for t in self._tokens.values()))

    def __repr__(self) -> str:
        return f"IamPasswordAuth({self.creds!r}, logins={self.logins})"
