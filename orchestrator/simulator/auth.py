"""Who may call the simulated service: one pluggable check run on every request before the backend.

An `Authenticator` sees the whole request as it came off the wire (`WireRequest`: method, raw path and
query, headers, body bytes, host, the path's project) plus the simulator's wall-clock time, and returns the
caller's identity or raises a `GatewayError` (401 APIGW.0301 / APIGW.0307, contract §6-§8):

    TokenAuth   X-Auth-Token: configured tokens and tokens our IAM issued (expiry, project scope) [§7]
    AkSkAuth    SDK-HMAC-SHA256 signatures (±15 min skew, X-Project-Id, the lock after > 5 failures) [§6]
    AnyOf       either of several

`authenticator_for(config, ...)` builds the one `SimulatorConfig.auth_mode` asks for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Protocol

from orchestrator.signing import VerifyFailure, parse_authorization, split_query, verify_request

from .config import AccessKey, SimulatorConfig
from .errors import ApiError, GatewayError, token_expired, unauthorized
from .iam import IssuedToken

TOKEN_HEADER: Final = "X-Auth-Token"  # noqa: S105 - a header name, not a secret
SECURITY_TOKEN_HEADER: Final = "X-Security-Token"  # noqa: S105 - a header name
PROJECT_HEADER: Final = "X-Project-Id"
# [DOC apig-faq-0003] the gateway's words for a locked AK
LOCKED_DETAIL: Final = "AK access failed to reach the limit,forbidden."


@dataclass(frozen=True, slots=True)
class WireRequest:
    """A request exactly as received, for checks that must see the bytes (signatures)."""

    method: str
    path: str  # raw (still percent-encoded), without the query
    query_string: str  # raw, without "?"
    headers: Mapping[str, str]  # case-insensitive (a multidict from the server)
    body: bytes
    host: str
    project_id: str | None = None  # the {project_id} of the path, if the route has one


class Authenticator(Protocol):
    def authenticate(self, request: WireRequest, now: datetime) -> str:
        """Return the caller's identity, or raise `GatewayError`."""
        ...


# ---------------------------------------------------------------- IAM tokens


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """IAM token auth: `X-Auth-Token` must be present, not expired, and known.

    A token our IAM issued is valid until its `expires_at` (then 401 APIGW.0307) and only for its project
    (another project's path: 401 APIGW.0301 [INF]). Any other token must be in `tokens`, unless `tokens` is
    None: then any non-empty token is accepted, for any project.
    """

    tokens: frozenset[str] | None = None  # None: any non-empty token is accepted
    expired: frozenset[str] = frozenset()
    issued: Mapping[str, IssuedToken] = field(default_factory=dict)

    def authenticate(self, request: WireRequest, now: datetime) -> str:
        token = request.headers.get(TOKEN_HEADER, "").strip()
        if not token:
            raise unauthorized("x-auth-token not found", absent=True)
        if token in self.expired:
            raise token_expired()
        issued = self.issued.get(token)
        if issued is not None:
            if now >= issued.expires_at:
                raise token_expired()
            if request.project_id is not None and request.project_id != issued.project_id:
                raise unauthorized("the token is not scoped to the project of the request")  # [INF] wording
            return f"token:{issued.user.name}@{issued.project_name}"
        if self.tokens is not None and token not in self.tokens:
            raise unauthorized("decrypt token fail")
        return f"token:{token[:6]}"


# ---------------------------------------------------------------- AK/SK signatures


class Lockout:
    """Consecutive AK/SK failures per access key, and the locks they cause [DOC §6].

    "AK/SK authentication fails for more than five consecutive times, and the AK/SK pair is locked for five
    minutes": the (limit+1)-th consecutive failure locks the key; while locked every request with it is
    refused, correctly signed or not, without extending the lock [INF]; a success resets the count.

    The contract's letter (§6: "> 5 consecutive AK/SK failures lock the AK") is followed: after 5 failures a
    6th, correctly signed request still passes; the 6th failure locks, so the 7th request is the first one
    refused as locked. Shorthand elsewhere ("locked after 5 failures", "the 5-failure lock") could be read as
    locking the 6th request; neither the contract nor its source says whether the failure that crosses the
    limit is itself answered as locked [UNK]: here it is answered for its own fault (e.g. signature mismatch).
    """

    def __init__(self) -> None:
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, datetime] = {}

    def locked(self, ak: str, now: datetime) -> bool:
        until = self._locked_until.get(ak)
        if until is None:
            return False
        if now < until:
            return True
        del self._locked_until[ak]  # the lock is over: start counting afresh
        self._failures.pop(ak, None)
        return False

    def failed(self, ak: str, now: datetime, *, limit: int, lock_for: timedelta) -> None:
        self._failures[ak] = self._failures.get(ak, 0) + 1
        if self._failures[ak] > limit:
            self._locked_until[ak] = now + lock_for

    def succeeded(self, ak: str) -> None:
        self._failures.pop(ak, None)

    def failures(self, ak: str) -> int:
        return self._failures.get(ak, 0)


def _signature_refused(reason: VerifyFailure) -> GatewayError:
    # The reason only: never the signature, the string to sign or the secret key.
    absent = reason is VerifyFailure.MISSING_AUTHORIZATION
    if reason is VerifyFailure.UNKNOWN_ACCESS_KEY:
        return unauthorized("Get secretKey failed,err:ak not exist")  # [DOC apig-faq-0003], AK left out
    if reason is VerifyFailure.SKEWED:
        return unauthorized("signature expired")  # [DOC apig-faq-0009 "signature expired"]
    return unauthorized(str(reason), absent=absent)


@dataclass(frozen=True, slots=True)
class AkSkAuth:
    """AK/SK auth: a valid SDK-HMAC-SHA256 signature by a known key, within `max_skew` of `now` [§6].

    Also: a temporary key's X-Security-Token must be sent and signed; X-Project-Id must name the path's
    project (if `check_project`); after more than `lock_after` consecutive failures the AK is locked for
    `lock_for` (state kept in `lockout`, which outlives a config change).
    """

    keys: Mapping[str, AccessKey]
    lockout: Lockout = field(default_factory=Lockout)
    max_skew: timedelta = timedelta(minutes=15)
    lock_after: int = 5
    lock_for: timedelta = timedelta(minutes=5)
    check_project: bool = True

    @classmethod
    def from_config(cls, config: SimulatorConfig, lockout: Lockout) -> AkSkAuth:
        return cls(
            keys={key.ak: key for key in config.access_keys},
            lockout=lockout,
            max_skew=timedelta(seconds=config.max_skew),
            lock_after=config.aksk_lock_after,
            lock_for=timedelta(seconds=config.aksk_lock_seconds),
            check_project=config.require_project_header,
        )

    def authenticate(self, request: WireRequest, now: datetime) -> str:
        ak = self._access_key(request)
        if ak is not None and self.lockout.locked(ak, now):
            raise unauthorized(LOCKED_DETAIL)
        try:
            self._verify(request, now)
        except ApiError:
            if ak is not None and ak in self.keys:
                self.lockout.failed(ak, now, limit=self.lock_after, lock_for=self.lock_for)
            raise
        assert ak is not None
        self.lockout.succeeded(ak)
        return f"aksk:{ak[:4]}…{ak[-4:]}" if len(ak) >= 12 else "aksk:…"

    @staticmethod
    def _access_key(request: WireRequest) -> str | None:
        try:
            return parse_authorization(request.headers.get("Authorization", ""))[0]
        except ValueError:
            return None

    def _verify(self, request: WireRequest, now: datetime) -> None:
        try:
            query = split_query(request.query_string)
        except ValueError:
            raise unauthorized("the query string cannot be verified (a literal '+')") from None
        result = verify_request(
            request.method,
            request.path,
            query,
            request.headers,
            request.body,
            secret_lookup=lambda ak: key.sk if (key := self.keys.get(ak)) is not None else None,
            now=now,
            max_skew=self.max_skew,
        )
        if not result.ok:
            assert result.reason is not None
            raise _signature_refused(result.reason)
        assert result.access_key is not None
        key = self.keys[result.access_key]
        if key.security_token is not None:
            self._check_security_token(request, key.security_token)
        sent_project = request.headers.get(PROJECT_HEADER, "").strip()
        if self.check_project and request.project_id is not None and sent_project != request.project_id:
            raise unauthorized("X-Project-Id does not match the project of the request")  # [INF] wording

    @staticmethod
    def _check_security_token(request: WireRequest, expected: str) -> None:
        """A temporary key's requests carry its security token, signed [§6 "temporary credentials"]."""
        sent = request.headers.get(SECURITY_TOKEN_HEADER, "").strip()
        _, signed, _ = parse_authorization(request.headers["Authorization"])
        if not sent or SECURITY_TOKEN_HEADER.lower() not in signed:
            raise unauthorized("x-security-token not found or not signed")
        if sent != expected:
            raise unauthorized("invalid x-security-token")


# ---------------------------------------------------------------- combining


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Accept the request if any authenticator accepts it.

    Otherwise raise the first error about a credential the request did carry (a bad signature beats
    "x-auth-token not found"); if it carried none, the first error.
    """

    authenticators: Sequence[Authenticator]

    def authenticate(self, request: WireRequest, now: datetime) -> str:
        errors: list[ApiError] = []
        for authenticator in self.authenticators:
            try:
                return authenticator.authenticate(request, now)
            except ApiError as error:
                errors.append(error)
        assert errors, "AnyOf needs at least one authenticator"
        present = [error for error in errors if not getattr(error, "absent", False)]
        raise (present or errors)[0]


def authenticator_for(config: SimulatorConfig, issued: Mapping[str, IssuedToken], lockout: Lockout) -> Authenticator:
    """The gateway check `config.auth_mode` asks for: "token", "aksk" or "both" (either is enough)."""
    tokens = TokenAuth(config.tokens, config.expired_tokens, issued)
    if config.auth_mode == "token":
        return tokens
    signatures = AkSkAuth.from_config(config, lockout)
    if config.auth_mode == "aksk":
        return signatures
    return AnyOf((tokens, signatures))  # nothing sent at all: "x-auth-token not found", as the gateway says
