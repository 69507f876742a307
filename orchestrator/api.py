"""The only module that speaks HTTP. One attempt per call: retries are the engine's business.

The engine sees the small `ProxyApi` protocol; `HttpApi` implements it with one aiohttp session. Each call
passes the governor (concurrency, then rate), asks the authenticator for fresh headers, sends exactly one
request and returns a `Reply`, whatever the status. Failures below HTTP raise `TransportError`, telling
whether the request may have reached the server.
"""

from __future__ import annotations

import asyncio
import json
import platform
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from yarl import URL

from . import __version__
from .auth import Authenticator, IssuedToken
from .credentials import PasswordCredentials, iam_token_request_body
from .errors import AuthError, TransportError
from .governor import Governor, Start
from .plan import Mode
from .redact import Scrubber
from .retrying import parse_retry_after

# Bodies of interest here are a few KiB; anything past this is a hostile or broken answer, not data.
MAX_BODY_BYTES = 1 << 20
EXCERPT_CHARS = 200
PAGE_LIMIT = 100  # contract §2: 1..100; the default differs between doc (100) and SDK (10), so always send it
USER_AGENT = f"orchestrator/{__version__} python/{platform.python_version()}"


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer. `body` is the parsed JSON, or None when the body was not JSON (see `excerpt`)."""

    status: int
    body: Any = None
    excerpt: str = ""
    retry_after: str | None = None
    request_id: str | None = None
    wire: int = 1  # requests that left for the server for this one call (aiohttp may silently re-send)
    location: str | None = None  # a redirect's target: recorded, never followed

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_code(self) -> str | None:
        code = _error_field(self.body, ("error_code", "errorCode", "code"))
        return "redirect" if code is None and 300 <= self.status < 400 else code

    @property
    def error_msg(self) -> str | None:
        if 300 <= self.status < 400 and _error_field(self.body, ("error_msg",)) is None:
            return f"redirected to {self.location or '(no Location)'}; not followed (credentials stay here)"
        message = _error_field(self.body, ("error_msg", "errorMsg", "message"))
        if message is None and not self.ok and self.excerpt:
            return f"non-JSON error body: {self.excerpt}"
        return message


def _error_field(body: Any, names: tuple[str, ...]) -> str | None:
    # Same order of keys as the official SDK's exception handler (contract §5).
    if not isinstance(body, dict):
        return None
    for name in names:
        value = body.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)[:EXCERPT_CHARS]
    return None


class ProxyApi(Protocol):
    """What the engine needs from the service. Tests may hand the engine a fake."""

    async def change_consistency(
        self, project_id: str, instance_id: str, proxy_id: str, mode: Mode, *, admitted: Callable[[], None] = _nothing
    ) -> Reply:
        """`admitted` is called when the request is about to leave (the governor let it through)."""
        ...

    async def list_proxies(self, project_id: str, instance_id: str, *, offset: int, limit: int) -> Reply: ...

    async def get_job(self, project_id: str, job_id: str) -> Reply: ...

    async def list_jobs(self, project_id: str, *, status: str, job_name: str, offset: int, limit: int) -> Reply: ...


def consistency_body(mode: Mode) -> bytes:
    """The PUT body, byte for byte what the official SDK sends (contract §1, §5).

    `consistence_mode` is always sent, so it decides; `session_consistence` is mandatory and typed string in the
    doc and SDK, so it is the string "true" for session and "false" otherwise (Terraform's mapping).
    """
    payload = {"session_consistence": "true" if mode == "session" else "false", "consistence_mode": mode}
    return json.dumps(payload).encode()


def _segment(value: str) -> str:
    # Plan validation already restricts IDs to [0-9A-Za-z]; quoting again costs nothing and means a bug there
    # still cannot smuggle a path segment into the URL.
    return quote(value, safe="")


@dataclass(slots=True)
class WireCounter:
    """Requests that actually left for the server, counted by aiohttp's tracing.

    aiohttp re-sends an idempotent request (PUT included) once when a kept-alive connection drops, without
    telling the caller (STYLE.md); counting at the wire keeps those attempts visible.
    """

    sent: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def on_headers_sent(
            session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestHeadersSentParams
        ) -> None:
            self.sent += 1
            self.by_method[params.method] = self.by_method.get(params.method, 0) + 1
            per_call = ctx.trace_request_ctx
            if isinstance(per_call, _CallWire):
                per_call.sent += 1
                if per_call.start is not None:  # the governor's log counts the request from now on
                    per_call.start.mark_sent(asyncio.get_running_loop().time())

        config.on_request_headers_sent.append(on_headers_sent)
        return config


@dataclass(slots=True)
class _CallWire:
    sent: int = 0
    start: Start | None = None  # the governor's record of this call


class HttpApi:
    """`ProxyApi` over aiohttp. Use as an async context manager; it owns its session."""

    def __init__(
        self,
        endpoint: str,
        auth: Authenticator,
        governor: Governor,
        *,
        timeout: float,
        language: str = "en-us",
        throttle_pause: float = 1.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._auth = auth
        self._governor = governor
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._language = language
        self.wire = WireCounter()
        self.refused: str | None = None  # the final 401 that made every later call pointless
        self._throttle_pause = throttle_pause  # how long a 429 without a usable Retry-After pauses everyone
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpApi:
        connector = aiohttp.TCPConnector(limit=self._governor.concurrency, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            connector=connector,
            trace_configs=[self.wire.trace_config()],
        )
        # aiohttp (since 3.10) silently re-sends an idempotent request, PUT included, once after a dropped
        # connection, even a fresh one; for us that is a second change request the engine never decided to
        # send. There is no public switch (aio-libs/aiohttp#10790), so turn the private one off where it
        # exists; the wire counter still reports any re-send a future aiohttp might make.
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- the protocol -------------------------------------------------------------------------------------

    async def change_consistency(
        self, project_id: str, instance_id: str, proxy_id: str, mode: Mode, *, admitted: Callable[[], None] = _nothing
    ) -> Reply:
        path = (
            f"/v3/{_segment(project_id)}/instances/{_segment(instance_id)}"
            f"/proxy/{_segment(proxy_id)}/session-consistence"
        )
        return await self._send("PUT", path, "", consistency_body(mode), project_id, admitted=admitted)

    async def list_proxies(self, project_id: str, instance_id: str, *, offset: int, limit: int) -> Reply:
        path = f"/v3/{_segment(project_id)}/instances/{_segment(instance_id)}/proxies"
        # Canonical (sorted) query, as the SDK sends it (contract §5).
        return await self._send("GET", path, f"limit={int(limit)}&offset={int(offset)}", b"", project_id)

    async def get_job(self, project_id: str, job_id: str) -> Reply:
        path = f"/v3/{_segment(project_id)}/jobs"
        return await self._send("GET", path, f"id={_segment(job_id)}", b"", project_id)

    async def list_jobs(self, project_id: str, *, status: str, job_name: str, offset: int, limit: int) -> Reply:
        """`GET /v3/{project_id}/immediate-jobs` (contract §3), filtered by status and job name."""
        path = f"/v3/{_segment(project_id)}/immediate-jobs"
        query = f"job_name={_segment(job_name)}&limit={int(limit)}&offset={int(offset)}&status={_segment(status)}"
        return await self._send("GET", path, query, b"", project_id)

    # --- one attempt --------------------------------------------------------------------------------------

    def _headers(self, project_id: str, has_body: bool) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json;charset=utf-8" if has_body else "application/json",
            "X-Language": self._language,
            "X-Project-Id": project_id,
            "User-Agent": USER_AGENT,
        }
        return headers

    async def _send(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        project_id: str,
        *,
        admitted: Callable[[], None] = _nothing,
    ) -> Reply:
        """One call: one attempt, plus one more only if the authenticator refreshed refused credentials."""
        url = f"{self.endpoint}{path}" + (f"?{query}" if query else "")
        reply, sent = await self._attempt(method, url, body, project_id, admitted)
        if reply.status == 401 and await self._auth.recover(reply.status, reply.error_code, project_id, sent):
            wire = reply.wire
            reply, _ = await self._attempt(method, url, body, project_id, admitted)
            reply = replace(reply, wire=reply.wire + wire)
        if reply.status == 401 and self.refused is None:
            self.refused = f"HTTP 401 {reply.error_code or ''}: {reply.error_msg or ''}".strip()
        return reply

    async def _attempt(
        self, method: str, url: str, body: bytes, project_id: str, admitted: Callable[[], None] = _nothing
    ) -> tuple[Reply, dict[str, str]]:
        if self._session is None:
            raise RuntimeError("HttpApi used outside 'async with'")
        async with self._governor.call() as start:
            if self.refused is not None:
                # Credentials refused for good earlier in this run: sending more would only be refused again
                # (and could lock an AK). Nothing is sent.
                raise AuthError(f"not sent: the credentials were refused earlier in this run ({self.refused})")
            headers = await self._auth.authorize(method, url, self._headers(project_id, bool(body)), body, project_id)
            admitted()
            wire = _CallWire(start=start)
            try:
                async with self._session.request(
                    method,
                    URL(url, encoded=True),
                    data=body or None,
                    headers=headers,
                    timeout=self._timeout,
                    # Never follow a redirect: it would carry our credentials to wherever it points.
                    allow_redirects=False,
                    trace_request_ctx=wire,
                ) as response:
                    raw = await _read_capped(response)
                    if response.status != 401:
                        self._governor.proven.set()
                    if response.status == 429:
                        # Everyone waits, not only this caller (contract §8: the gateway throttles per account).
                        retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
                        self._governor.throttled(retry_after if retry_after is not None else self._throttle_pause)
                    else:
                        self._governor.succeeded()
                    return _reply(response, raw, wire.sent, self._auth.secrets), headers
            except TransportError as exc:
                exc.wire = wire.sent
                raise
            except TimeoutError as exc:
                detail = f"no answer within {self._timeout.total:g}s"
                raise TransportError("timeout", detail, sent=wire.sent > 0, wire=wire.sent) from exc
            except aiohttp.ClientConnectorError as exc:
                raise TransportError("connect", _describe(exc), sent=False, wire=wire.sent) from exc
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
                raise TransportError("dropped", _describe(exc), sent=wire.sent > 0, wire=wire.sent) from exc
            except aiohttp.ClientError as exc:
                raise TransportError("protocol", _describe(exc), sent=wire.sent > 0, wire=wire.sent) from exc


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:EXCERPT_CHARS]


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TransportError("protocol", f"response body larger than {MAX_BODY_BYTES} bytes", sent=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _reply(response: aiohttp.ClientResponse, raw: bytes, wire: int, secrets: Callable[[], Iterable[str]]) -> Reply:
    body: Any = None
    excerpt = ""
    if raw:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            # A gateway refusing an over-long header may quote it back: never keep a piece of a secret.
            excerpt = Scrubber(secrets())(_excerpt(raw))
    return Reply(
        status=response.status,
        body=body,
        excerpt=excerpt,
        retry_after=response.headers.get("Retry-After"),
        request_id=response.headers.get("X-Request-Id"),
        wire=wire,
        location=response.headers.get("Location", "")[:EXCERPT_CHARS] or None,
    )


def _excerpt(raw: bytes) -> str:
    text = raw[: EXCERPT_CHARS * 4].decode("utf-8", "replace")
    printable = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(printable.split())[:EXCERPT_CHARS]


__all__ = [
    "MAX_BODY_BYTES",
    "PAGE_LIMIT",
    "HttpApi",
    "IamClient",
    "ProxyApi",
    "Reply",
    "WireCounter",
    "consistency_body",
]


class IamClient:
    """IAM password login, `POST {iam}/v3/auth/tokens` (contract §7), for `auth.IamPasswordAuth`.

    The token is the `X-Subject-Token` response header of a 201; `token.expires_at` says when it ends. This is
    another service than the proxy API, so its few calls do not pass the run's governor.
    """

    ATTEMPTS = 3

    def __init__(
        self,
        iam_endpoint: str,
        *,
        timeout: float,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        origin: str = "",
    ):
        self.endpoint = iam_endpoint.rstrip("/")
        self._where = f"{self.endpoint} (from {origin})" if origin else self.endpoint  # where it was set
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._sleep = sleep or asyncio.sleep
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> IamClient:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def login(self, creds: PasswordCredentials, project_id: str) -> IssuedToken:
        who = f"user {creds.username} of account {creds.domain_name}"
        problem = ""
        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                status, headers, body = await self._post(iam_token_request_body(creds, project_id=project_id))
            except TransportError as exc:
                problem = f"IAM at {self._where} did not answer ({exc.kind}: {exc.detail})"
            else:
                if status == 201:
                    return _issued_token(headers, body, who)
                reply = Reply(status, body if isinstance(body, dict) else None)
                code = _iam_error(body) or reply.error_code or ""
                problem = f"IAM refused the password login of {who} for project {project_id}: HTTP {status} {code}"
                if status < 500 and status != 429:
                    raise AuthError(problem.strip())
            if attempt < self.ATTEMPTS:
                await self._sleep(0.5 * attempt)
        raise AuthError(problem.strip())

    async def _post(self, payload: dict[str, Any]) -> tuple[int, Mapping[str, str], Any]:
        if self._session is None:
            raise RuntimeError("IamClient used outside 'async with'")
        url = f"{self.endpoint}/v3/auth/tokens?nocatalog=true"
        try:
            async with self._session.post(
                url,
                data=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json;charset=utf8", "User-Agent": USER_AGENT},
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                raw = await _read_capped(response)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                return response.status, dict(response.headers), body
        except TimeoutError as exc:
            raise TransportError("timeout", f"no answer within {self._timeout.total:g}s", sent=True) from exc
        except aiohttp.ClientError as exc:
            raise TransportError("connect", _describe(exc), sent=False) from exc


def _iam_error(body: Any) -> str | None:
    # IAM's own errors look like {"error": {"code": 401, "message": "...", "title": "Unauthorized"}} [INF].
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        return str(message)[:EXCERPT_CHARS] if message else None
    return None


def _issued_token(headers: Mapping[str, str], body: Any, who: str) -> IssuedToken:
    value = next((v for k, v in headers.items() if k.lower() == "x-subject-token"), "")
    token = body.get("token") if isinstance(body, dict) else None
    if not value or not isinstance(token, dict):
        raise AuthError(f"IAM answered the login of {who} without a token (no X-Subject-Token or no token body)")
    try:
        expires_at = _iam_time(token["expires_at"])
        issued_at = _iam_time(token.get("issued_at")) if token.get("issued_at") else datetime.now(UTC)
    except (KeyError, TypeError, ValueError):
        raise AuthError(f"IAM answered the login of {who} with an unreadable token.expires_at") from None
    return IssuedToken(value=value, expires_at=expires_at, issued_at=issued_at)


def _iam_time(value: Any) -> datetime:
    when = datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
