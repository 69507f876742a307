"""The HTTP edge against a tiny local aiohttp server: what goes on the wire and how answers are read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from orchestrator.api import MAX_BODY_BYTES, HttpApi, consistency_body
from orchestrator.auth import StaticToken
from orchestrator.errors import TransportError
from orchestrator.governor import Governor, Start
from orchestrator.plan import Rate

PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"
INSTANCE = "d512257ecca04d96a0f3a9021018a385in07"
PROXY = "7bf4a8bbb4f4fb58233a242ee13603bpo01"
TOKEN = "MIItesttoken-abcdef"

Handler = Callable[[web.Request], "asyncio.Future[web.StreamResponse] | web.StreamResponse"]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], asyncio.Future[str]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start  # type: ignore[misc]
    for runner in runners:
        await runner.cleanup()


def api_for(url: str, *, timeout: float = 5.0) -> HttpApi:
    return HttpApi(url, StaticToken(TOKEN), Governor(Rate(1000, 1.0), 4), timeout=timeout)


def test_put_body_is_byte_for_byte_the_sdk_body() -> None:
    """The PUT body matches what the official SDK sends (contract §5): string session_consistence first."""
    assert consistency_body("global") == b'{"session_consistence": "false", "consistence_mode": "global"}'
    assert consistency_body("session") == b'{"session_consistence": "true", "consistence_mode": "session"}'


async def test_put_request_on_the_wire(serve) -> None:
    """The PUT goes to the documented path with the token, JSON content type, project header and body."""
    seen: dict[str, object] = {}

    async def handler(request: web.Request) -> web.Response:
        seen.update(
            method=request.method, path=request.raw_path, headers=dict(request.headers), body=await request.read()
        )
        return web.json_response({"job_id": "j-1"}, headers={"X-Request-Id": "req-9"})

    async with api_for(await serve(handler)) as api:
        reply = await api.change_consistency(PROJECT, INSTANCE, PROXY, "session")
    assert reply.status == 200 and reply.body == {"job_id": "j-1"} and reply.request_id == "req-9" and reply.wire == 1
    assert seen["method"] == "PUT"
    assert seen["path"] == f"/v3/{PROJECT}/instances/{INSTANCE}/proxy/{PROXY}/session-consistence"
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert headers["X-Auth-Token"] == TOKEN and headers["X-Project-Id"] == PROJECT
    assert headers["Content-Type"] == "application/json;charset=utf-8"
    assert json.loads(seen["body"]) == {"session_consistence": "true", "consistence_mode": "session"}  # type: ignore[arg-type]


async def test_listing_and_job_queries_are_canonical(serve) -> None:
    """GETs carry their query in sorted canonical form, limit always explicit (contract §2, §5)."""
    paths: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        paths.append(request.raw_path)
        return web.json_response({})

    async with api_for(await serve(handler)) as api:
        await api.list_proxies(PROJECT, INSTANCE, offset=200, limit=100)
        await api.get_job(PROJECT, "dff1d289-4d03-4942-8b9f-463ea07c000d")
    assert paths == [
        f"/v3/{PROJECT}/instances/{INSTANCE}/proxies?limit=100&offset=200",
        f"/v3/{PROJECT}/jobs?id=dff1d289-4d03-4942-8b9f-463ea07c000d",
    ]


async def test_error_body_is_kept(serve) -> None:
    """A 4xx JSON error body yields error_code and error_msg (raise_for_status would have dropped them)."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error_code": "DBS.200001", "error_msg": "Parameter error."}, status=400)

    async with api_for(await serve(handler)) as api:
        reply = await api.change_consistency(PROJECT, INSTANCE, PROXY, "global")
    assert (reply.status, reply.error_code, reply.error_msg) == (400, "DBS.200001", "Parameter error.")


async def test_html_error_page_becomes_an_excerpt(serve) -> None:
    """A non-JSON error page is not a crash: the reply keeps a short, single-line excerpt."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>\n<body>Bad Gateway</body>\n</html>", content_type="text/html")

    async with api_for(await serve(handler)) as api:
        reply = await api.list_proxies(PROJECT, INSTANCE, offset=0, limit=100)
    assert reply.status == 502 and reply.body is None
    assert reply.error_msg == "non-JSON error body: <html> <body>Bad Gateway</body> </html>"


async def test_huge_body_is_refused(serve) -> None:
    """A body larger than the cap is a protocol failure, not a memory blow-up."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (MAX_BODY_BYTES + 10))

    async with api_for(await serve(handler)) as api:
        with pytest.raises(TransportError) as caught:
            await api.list_proxies(PROJECT, INSTANCE, offset=0, limit=100)
    assert caught.value.kind == "protocol"


async def test_redirects_are_not_followed(serve) -> None:
    """A redirect is returned as is: our credentials never follow it to another host."""
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise web.HTTPFound("http://127.0.0.2:1/steal")

    async with api_for(await serve(handler)) as api:
        reply = await api.get_job(PROJECT, "j")
    assert reply.status == 302 and len(hits) == 1


async def test_timeout_after_sending_is_flagged_as_sent(serve) -> None:
    """A PUT that gets no answer in time raises a timeout that says the request was sent."""

    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({})

    async with api_for(await serve(handler), timeout=0.2) as api:
        with pytest.raises(TransportError) as caught:
            await api.change_consistency(PROJECT, INSTANCE, PROXY, "global")
    assert (caught.value.kind, caught.value.sent, caught.value.wire) == ("timeout", True, 1)


async def test_connection_refused_is_not_sent() -> None:
    """Nothing listening: a connect error that says the request never left."""
    async with api_for("http://127.0.0.1:9") as api:
        with pytest.raises(TransportError) as caught:
            await api.change_consistency(PROJECT, INSTANCE, PROXY, "global")
    assert (caught.value.kind, caught.value.sent) == ("connect", False)


async def test_token_never_in_repr() -> None:
    """The authenticator's repr and description never show the token."""
    token = StaticToken(TOKEN)
    assert TOKEN not in repr(token) and TOKEN not in token.describe()


async def test_expired_token_is_refreshed_and_the_call_sent_once_more(serve) -> None:
    """A 401 APIGW.0307 makes the authenticator refresh, and the same call is sent once more with the new token."""
    from test_auth import CREDS, Clock, FakeIam

    from orchestrator.auth import IamPasswordAuth

    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers["X-Auth-Token"])
        if request.headers["X-Auth-Token"] == "MIItoken-1":
            return web.json_response(
                {"error_code": "APIGW.0307", "error_msg": "The token must be updated."}, status=401
            )
        return web.json_response({"job_id": "j"})

    clock = Clock()
    auth = IamPasswordAuth(CREDS, FakeIam(clock).login, clock)
    async with HttpApi(await serve(handler), auth, Governor(Rate(100, 1.0), 2), timeout=2.0) as api:
        reply = await api.change_consistency(PROJECT, INSTANCE, PROXY, "global")
    assert reply.status == 200 and reply.wire == 2
    assert seen == ["MIItoken-1", "MIItoken-2"]


async def test_a_second_401_is_returned_not_retried(serve) -> None:
    """If the fresh token is refused too, the 401 is returned after exactly two requests."""
    from test_auth import CREDS, Clock, FakeIam

    from orchestrator.auth import IamPasswordAuth

    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.headers["X-Auth-Token"])
        return web.json_response({"error_code": "APIGW.0307", "error_msg": "The token must be updated."}, status=401)

    clock = Clock()
    auth = IamPasswordAuth(CREDS, FakeIam(clock).login, clock)
    async with HttpApi(await serve(handler), auth, Governor(Rate(100, 1.0), 2), timeout=2.0) as api:
        reply = await api.list_proxies(PROJECT, INSTANCE, offset=0, limit=100)
    assert reply.status == 401 and len(hits) == 2


async def test_a_quoted_piece_of_the_token_never_reaches_the_reply(serve) -> None:
    """A non-JSON error page quoting the start of a long token is kept with that piece masked."""
    long_token = "MIIlong" + "Ab3" * 3000

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=400, text=f"Got more than 8190 bytes: b'{request.headers['X-Auth-Token'][:150]}")

    async with HttpApi(await serve(handler), StaticToken(long_token), Governor(Rate(100, 1.0), 2), timeout=2.0) as api:
        reply = await api.list_proxies(PROJECT, INSTANCE, offset=0, limit=100)
    assert reply.status == 400 and reply.error_msg is not None
    assert "Got more than 8190 bytes" in reply.error_msg and "Ab3Ab3Ab3" not in reply.error_msg


class RecordingGovernor(Governor):
    """A governor that keeps the log entry of every call it lets through."""

    def __init__(self) -> None:
        super().__init__(Rate(1000, 1.0), 4)
        self.starts: list[Start] = []

    @asynccontextmanager
    async def call(self) -> AsyncIterator[Start]:
        async with super().call() as start:
            self.starts.append(start)
            yield start


async def test_the_governor_learns_when_each_request_left(serve) -> None:
    """The trace marks a call's log entry when its headers are sent; a call never sent stays at its admission."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"job_id": "j-1"})

    governor = RecordingGovernor()
    async with HttpApi(await serve(handler), StaticToken(TOKEN), governor, timeout=5.0) as api:
        await api.change_consistency(PROJECT, INSTANCE, PROXY, "session")
    async with HttpApi("http://127.0.0.1:9", StaticToken(TOKEN), governor, timeout=5.0) as api:
        with pytest.raises(TransportError):
            await api.change_consistency(PROJECT, INSTANCE, PROXY, "session")
    sent, refused = governor.starts
    assert sent.sent is not None and sent.sent >= sent.admitted
    assert refused.sent is None and refused.moment == refused.admitted
