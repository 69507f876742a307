"""The simulator on the wire: an aiohttp app in front of the pure backend, with gateway behaviour and faults.

One catch-all handler does what the API gateway and the backend do, in order:

    count the request (stats) -> decide its faults (seeded) -> sizes (494/414/413 APIGW.0201)
    -> latency -> drop_before / stall -> route (404 APIGW.0101) -> authenticate (401 APIGW.0301/0307)
    -> throttle_429 -> error_500 -> backend (§1-§3) -> drop_after (PUT) -> answer, with X-Request-Id
    on every response -> one log line (`log`), if asked for
With `SimulatorConfig.hostile` set, the routes in `hostile_routes` get a hostile answer instead (hostile.py):
a broken gateway's (html_error, redirect_other_host) before routing to the backend, or the backend's own answer
mangled after it acted.

A request aiohttp's parser refuses (beyond `PARSER_LIMIT`, or malformed) gets the gateway's JSON answer too,
never aiohttp's plain-text 400 that quotes the offending header (a multi-KB token would land in the client's
error message); see `wire.py`.

The same port also serves IAM's `POST /v3/auth/tokens` (§7; another host in the real cloud): it needs no
credentials and gets no throttle_429/error_500 (those model the service), only the wire faults.

Routing is ours rather than aiohttp's so a wrong method or path gets the gateway's JSON 404, and every
request, even a dropped or unknown one, is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from orchestrator.errors import UsageError

from .auth import Authenticator, Lockout, WireRequest, authenticator_for
from .config import HOSTILE_BEFORE_BACKEND, Faults, SimulatorConfig
from .errors import ApiError, api_not_found, bad_request, server_error, throttled, too_large
from .faults import FaultDecider, FaultDecision
from .hostile import hostile_response
from .iam import SUBJECT_TOKEN_HEADER, TOKEN_PATH, TokenIssuer, token_body
from .service import Backend, Reply
from .state import Clock, Fleet
from .stats import RequestRecord, Stats, log_line
from .throttle import AccountBuckets, retry_after_header
from .wire import PARSER_ARGS, GatewayServer, oversized, read_body


@dataclass(frozen=True, slots=True)
class Call:
    """What a backend handler needs from one request."""

    params: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    content_type: str | None
    now: float
    wall_now: datetime  # the simulator's wall clock, for IAM token times


@dataclass(frozen=True, slots=True)
class Services:
    """What answers behind the gateway: the DBS backend and IAM's token issuer."""

    backend: Backend
    iam: TokenIssuer


Handler = Callable[[Services, SimulatorConfig, Call], Reply]


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool = True  # False for IAM's POST /v3/auth/tokens, which issues credentials (§7)


_SEGMENT = r"(?P<{}>[^/]+)"
_PROJECT = _SEGMENT.format("project_id")
_INSTANCE = _SEGMENT.format("instance_id")
_PROXY = _SEGMENT.format("proxy_id")


def _put_consistency(services: Services, config: SimulatorConfig, call: Call) -> Reply:
    p = call.params
    return services.backend.change_consistency(
        config, p["project_id"], p["instance_id"], p["proxy_id"], call.body, call.content_type, call.now
    )


def _list_proxies(services: Services, config: SimulatorConfig, call: Call) -> Reply:
    p = call.params
    return services.backend.list_proxies(config, p["project_id"], p["instance_id"], call.query, call.now)


def _get_job(services: Services, config: SimulatorConfig, call: Call) -> Reply:
    return services.backend.get_job(config, call.params["project_id"], call.query, call.now)


def _list_immediate_jobs(services: Services, config: SimulatorConfig, call: Call) -> Reply:
    return services.backend.list_immediate_jobs(config, call.params["project_id"], call.query, call.now)


def _issue_token(services: Services, config: SimulatorConfig, call: Call) -> Reply:
    issued = services.iam.issue(config, call.body, call.wall_now)
    # [DOC §7] "nocatalog": any non-empty value leaves the catalog out
    body = token_body(issued, catalog=not call.query.get("nocatalog"))
    return Reply(201, body, headers={SUBJECT_TOKEN_HEADER: issued.token})


ROUTES: tuple[Route, ...] = (
    Route(
        "put_consistency",
        "PUT",
        re.compile(rf"/v3/{_PROJECT}/instances/{_INSTANCE}/proxy/{_PROXY}/session-consistence"),
        _put_consistency,
    ),
    Route("list_proxies", "GET", re.compile(rf"/v3/{_PROJECT}/instances/{_INSTANCE}/proxies"), _list_proxies),
    Route("get_job", "GET", re.compile(rf"/v3/{_PROJECT}/jobs"), _get_job),
    Route("list_jobs", "GET", re.compile(rf"/v3/{_PROJECT}/immediate-jobs"), _list_immediate_jobs),
    Route("iam_tokens", "POST", re.compile(re.escape(TOKEN_PATH)), _issue_token, auth=False),
)


def match_route(method: str, path: str, routes: tuple[Route, ...] = ROUTES) -> tuple[Route | None, dict[str, str]]:
    """The route for (method, path) and its path parameters; a known path with another method is no match."""
    for route in routes:
        found = route.pattern.fullmatch(path)
        if found and route.method == method:
            return route, found.groupdict()
    return None, {}


# 494 is nginx's own code, with no standard reason phrase
_REASONS: Mapping[int, str] = {494: "Request Header Or Cookie Too Large"}


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        reason=_REASONS.get(status),
        body=json.dumps(body).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


Log = Callable[[str], None]


class Simulator:
    """The simulated service on a local port; `async with Simulator(fleet) as sim:` then talk to `sim.url`."""

    def __init__(
        self,
        fleet: Fleet,
        config: SimulatorConfig = SimulatorConfig(),  # noqa: B008 - frozen, shared safely
        *,
        clock: Clock = time.monotonic,
        auth: Authenticator | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        log: Log | None = None,
    ) -> None:
        fleet.bind_clock(clock)
        self.log = log  # called with one line per request (see `stats.log_line`), never a credential or body
        self.fleet = fleet
        self.stats = Stats()
        self.auth = auth  # None: the check `config.auth_mode` asks for (see `authenticator_for`)
        self.iam = TokenIssuer()  # the tokens issued at POST /v3/auth/tokens
        self.lockout = Lockout()  # AK/SK failure counts and locks, kept across config changes
        self._clock = clock
        self._wall_clock = wall_clock
        self._config = config
        self._decider = FaultDecider(config.faults)
        self._services = Services(
            Backend(fleet, job_fails=lambda rate: self._decider.job_fails(rate)),
            self.iam,
        )
        self._runner: web.ServerRunner | None = None
        self._buckets: AccountBuckets | None = None
        self._url: str | None = None
        self._closing: asyncio.Event | None = None

    # --- configuration, changeable while running ------------------------------------------------------

    @property
    def config(self) -> SimulatorConfig:
        return self._config

    @config.setter
    def config(self, config: SimulatorConfig) -> None:
        if config.faults != self._config.faults:
            self._decider = FaultDecider(config.faults)  # new faults: the seeded sequence starts over
        self._config = config

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> None:
        """Replace the faults (`set_faults(Faults(...))`) or change some (`set_faults(error_500=1.0)`)."""
        self.config = replace(self._config, faults=replace(faults or self._config.faults, **changes))

    def set_config(self, **changes: Any) -> None:
        self.config = replace(self._config, **changes)

    # --- life cycle -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the simulator is not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0: a free port) and return the base URL.

        A port in use, an address not of this machine or an unknown host name is the caller's UsageError (the
        CLI's exit 2, one line naming host and port), not a crash.
        """
        if self._runner is not None:
            raise RuntimeError("the simulator is already started")
        self._closing = asyncio.Event()
        server = GatewayServer(self._handle, self._refuse_unparsed, access_log=None, **PARSER_ARGS)
        runner = web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise UsageError(f"cannot listen on {_host_port(host, port)}: {_listen_problem(exc)}") from None
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._url = f"http://{_host_port(bound_host, bound_port)}"  # an IPv6 address in brackets
        return self._url

    async def close(self) -> None:
        if self._closing is not None:
            self._closing.set()  # stalled requests give up (and are dropped) instead of holding shutdown
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self._url = None

    async def __aenter__(self) -> Simulator:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- one request ------------------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        route, params = match_route(request.method, request.path)
        decision = self._decider.decide(request.method)
        index = self.stats.arrived(
            RequestRecord(
                self._clock(),
                request.method,
                route.name if route else "unknown",
                request_id=uuid.uuid4().hex,
                project_id=params.get("project_id"),
                instance_id=params.get("instance_id"),
                proxy_id=params.get("proxy_id"),
            )
        )
        try:
            return await self._respond(request, route, params, decision, index)
        finally:
            self._log(index, started)

    async def _respond(
        self,
        request: web.BaseRequest,
        route: Route | None,
        params: Mapping[str, str],
        decision: FaultDecision,
        index: int,
    ) -> web.StreamResponse:
        config = self._config
        request_id = self.stats.requests[index].request_id
        too_big = oversized(request, config)
        if too_big is not None:  # the gateway refuses it at once: no latency, no faults
            return self._refusal(index, too_big)
        if config.faults.latency:
            await asyncio.sleep(config.faults.latency)
        if decision.drop_before:
            return self._drop(request, index, "drop_before")
        if decision.stall and await self._stall(config.faults.stall_seconds):
            return self._drop(request, index, "stall")
        fault = "stall" if decision.stall else None
        body = await read_body(request, config.max_body_bytes)
        if body is None:
            return self._refusal(index, 413)
        hostile = config.hostile if route is not None and route.name in config.hostile_routes else None
        if hostile in HOSTILE_BEFORE_BACKEND:  # a broken gateway answers instead of the service: nothing applied
            return await self._hostile(request, index, hostile, 502, b"")
        try:
            reply = self._answer(request, route, params, body, decision, config)
            response = _json_response(reply.status, reply.body, reply.headers)
        except ApiError as error:
            fault = error.injected or fault
            response = _json_response(error.status, error.body(request_id), error.headers)
        if decision.drop_after and route is not None and route.name == "put_consistency":
            return self._drop(request, index, "drop_after")
        if hostile is not None:  # the backend has acted; only its answer is mangled
            assert isinstance(response.body, bytes)
            return await self._hostile(request, index, hostile, response.status, response.body)
        response.headers["X-Request-Id"] = request_id
        self.stats.answered(index, response.status, fault)
        return response

    async def _hostile(
        self, request: web.BaseRequest, index: int, mode: str, status: int, body: bytes
    ) -> web.StreamResponse:
        """A hostile answer (`SimulatorConfig.hostile`), recorded with the fault "hostile:<mode>"."""
        config = self._config
        response = await hostile_response(
            request,
            mode,
            status,
            body,
            redirect_to=config.hostile_redirect_to,
            drip_seconds=config.hostile_drip_seconds,
            request_id=self.stats.requests[index].request_id,
        )
        self.stats.answered(index, response.status, f"hostile:{mode}")
        return response

    def _refusal(self, index: int, status: int) -> web.Response:
        """The gateway's JSON 400/413/414/494 APIGW.0201, then the connection closes.

        aiohttp reads and discards an unread body first (its lingering time), so the client gets the answer
        rather than a reset.
        """
        request_id = self.stats.requests[index].request_id
        error = too_large(status) if status != 400 else bad_request()
        response = _json_response(error.status, error.body(request_id), {"X-Request-Id": request_id})
        response.force_close()
        self.stats.answered(index, status)
        return response

    def _refuse_unparsed(self, status: int) -> web.StreamResponse:
        """A request aiohttp could not parse: counted, logged and refused, with nothing of it echoed."""
        started = time.perf_counter()
        index = self.stats.arrived(RequestRecord(self._clock(), "", "unknown", request_id=uuid.uuid4().hex))
        try:
            return self._refusal(index, status)
        finally:
            self._log(index, started)

    def _log(self, index: int, started: float) -> None:
        if self.log is None:
            return
        with contextlib.suppress(Exception):  # a failing log (a closed stdout) must not change the answer
            self.log(log_line(self.stats.requests[index], time.perf_counter() - started))

    def _answer(
        self,
        request: web.BaseRequest,
        route: Route | None,
        params: Mapping[str, str],
        body: bytes,
        decision: FaultDecision,
        config: SimulatorConfig,
    ) -> Reply:
        """The gateway's checks, injected refusals, then the backend; raises `ApiError` for error answers."""
        if route is None:
            raise api_not_found()
        wall_now = self._wall_clock()
        if route.auth:
            wire = WireRequest(
                method=request.method,
                path=request.raw_path.split("?", 1)[0],
                query_string=request.query_string,
                headers=request.headers,
                body=body,
                host=request.host,
                project_id=params.get("project_id"),
            )
            authenticator = self.auth or authenticator_for(config, self.iam.issued, self.lockout)
            authenticator.authenticate(wire, wall_now)
            if config.account_rate is not None:
                self._account_throttle(config, params.get("project_id") or "")
            if decision.throttle_429:
                raise throttled(config.faults.retry_after).as_injected("throttle_429")
            if decision.error_500:
                raise server_error().as_injected("error_500")  # refused before the backend: nothing is applied
        call = Call(params, request.query, body, request.headers.get("Content-Type"), self._clock(), wall_now)
        reply = route.handler(self._services, config, call)
        if reply.job is not None:
            job = reply.job
            self.stats.job_created((job.project_id, job.instance_id, job.proxy_id))
        return reply

    def _account_throttle(self, config: SimulatorConfig, account: str) -> None:
        assert config.account_rate is not None
        burst = config.account_burst if config.account_burst is not None else max(1.0, config.account_rate)
        if self._buckets is None or (self._buckets.rate, self._buckets.burst) != (config.account_rate, burst):
            self._buckets = AccountBuckets(config.account_rate, burst)
        wait = self._buckets.take(account, self._clock())
        if wait is not None:
            header = retry_after_header(wait) if config.account_retry_after else None
            raise throttled(header).as_injected("account_throttle")

    async def _stall(self, seconds: float) -> bool:
        """Hold the request; True if the simulator is closing meanwhile (then the request is dropped)."""
        assert self._closing is not None
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _drop(self, request: web.BaseRequest, index: int, fault: str) -> web.StreamResponse:
        """Close the connection without a byte of answer; aiohttp's later write to it is a no-op."""
        if request.transport is not None:
            request.transport.abort()
        self.stats.answered(index, None, fault)
        return web.Response(status=204)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listen_problem(exc: OSError) -> str:
    """The system's words for why it cannot listen: "address already in use", "permission denied", ..."""
    # aiohttp's own message wraps the system's words in "error while attempting to bind on address ..."
    system = exc.errno if not isinstance(exc, socket.gaierror) else None
    text = os.strerror(system) if system else (exc.strerror or str(exc))
    return text[:1].lower() + text[1:]


def run_simulator(
    fleet: Fleet,
    config: SimulatorConfig = SimulatorConfig(),  # noqa: B008 - frozen, shared safely
    host: str = "127.0.0.1",
    port: int = 8443,
    *,
    ready: Callable[[str], None] | None = None,
    log: Log | None = None,
) -> None:
    """Serve the simulator (plain HTTP) until SIGINT or SIGTERM; `ready(url)` is called once it listens.

    `log`, if given, is called with one line per request (`stats.log_line`): method, route, ids, status or fault
    (dropped, stall), elapsed ms; never a credential, a signature or a body.
    """
    asyncio.run(_serve(fleet, config, host, port, ready, log))


async def _serve(
    fleet: Fleet,
    config: SimulatorConfig,
    host: str,
    port: int,
    ready: Callable[[str], None] | None,
    log: Log | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    simulator = Simulator(fleet, config, log=log)
    try:
        url = await simulator.start(host, port)
        if ready is not None:
            ready(url)
        await stop.wait()
    finally:
        await simulator.close()
        for signum in signals:
            loop.remove_signal_handler(signum)
