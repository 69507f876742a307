"""The gateway's size limits (contract §8 APIGW.0201): big IAM tokens pass, oversized requests get JSON, never an echo."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from orchestrator.simulator import Fleet, Simulator, SimulatorConfig
from orchestrator.simulator.config import PARSER_LIMIT

P = "619d3e78f61b4be68bc5aa0b59edcf7b"
I1 = "d512257ecca04d96a0f3a9021018a385in07"
X = "7bf4a8bbb4f4fb58233a242ee13603bpo01"
LIST_PATH = f"/v3/{P}/instances/{I1}/proxies"
BIG_TOKEN = "MII" + "Tk" * 6000  # 12 KB, like a real IAM token with its roles and catalog


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    fleet = Fleet()
    fleet.add_proxy(P, I1, X, "eventual")
    async with Simulator(fleet, SimulatorConfig(tokens=frozenset({BIG_TOKEN}))) as simulator:
        yield simulator


async def raw_exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes; (status, headers, body) of the answer."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


def gateway_error(body: bytes, status_code: str = "APIGW.0201") -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(body)
    assert set(answer) == {"error_code", "error_msg", "request_id"}
    assert answer["error_code"] == status_code
    return answer


async def test_a_12_kb_token_is_accepted(sim: Simulator) -> None:
    """A configured 12 KB X-Auth-Token, beyond aiohttp's 8190-byte default, authenticates normally."""
    async with (
        aiohttp.ClientSession(headers={"X-Auth-Token": BIG_TOKEN}) as http,
        http.get(sim.url + LIST_PATH) as response,
    ):
        assert response.status == 200
        assert [entry["proxy"]["pool_id"] for entry in (await response.json())["proxy_list"]] == [X]


async def test_a_64_kb_header_is_494_json_without_its_content(sim: Simulator) -> None:
    """A header line beyond 32 KiB gets 494 APIGW.0201 in the gateway's JSON, quoting nothing of the request."""
    secret = "MIIsecret" + "S" * 65536
    async with (
        aiohttp.ClientSession(headers={"X-Auth-Token": secret}) as http,
        http.get(sim.url + LIST_PATH) as response,
    ):
        body = await response.read()
        assert response.status == 494
        assert response.content_type == "application/json"
        answer = gateway_error(body)
        assert answer["error_msg"] == "Request headers too large"
        assert answer["request_id"] == response.headers["X-Request-Id"]
        assert b"MIIsecret" not in body and b"SSSS" not in body
        assert not any("MIIsecret" in value for value in response.headers.values())
    assert [(r.route, r.status) for r in sim.stats.requests] == [("list_proxies", 494)]


async def test_headers_beyond_the_parser_limit_still_get_json_without_content(sim: Simulator) -> None:
    """Even a header aiohttp's own parser refuses gets the gateway's 494 JSON, not aiohttp's echoing text/plain 400."""
    # just past the limit: the server stops reading there, and little unread data means no reset before the answer
    secret = b"MIIsecret" + b"S" * PARSER_LIMIT
    request = b"GET " + LIST_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Auth-Token: " + secret + b"\r\n\r\n"
    status, headers, body = await raw_exchange(sim.url, request)
    assert (status, headers["Content-Type"]) == (494, "application/json; charset=utf-8")
    assert gateway_error(body)["error_msg"] == "Request headers too large"
    assert b"MIIsecret" not in body
    assert [(r.route, r.status) for r in sim.stats.requests] == [("unknown", 494)]


async def test_headers_too_large_in_total_are_494(sim: Simulator) -> None:
    """Many header lines, each small, beyond 4 × max_header_bytes together, are 494 too [INF nginx]."""
    sim.set_config(max_header_bytes=1024)
    headers = {f"X-Filler-{i}": "f" * 500 for i in range(10)}
    async with aiohttp.ClientSession() as http, http.get(sim.url + LIST_PATH, headers=headers) as response:
        assert response.status == 494
        gateway_error(await response.read())


async def test_a_long_uri_is_414_json(sim: Simulator) -> None:
    """A request target beyond 32 KiB gets 414 APIGW.0201 without the URI in the answer."""
    async with (
        aiohttp.ClientSession(headers={"X-Auth-Token": BIG_TOKEN}) as http,
        http.get(sim.url + LIST_PATH, params={"q": "Q" * 40000}) as response,
    ):
        body = await response.read()
        assert response.status == 414
        assert gateway_error(body)["error_msg"] == "Request URI too large"
        assert b"QQQQ" not in body


async def test_a_uri_beyond_the_parser_limit_is_414_json(sim: Simulator) -> None:
    """A request line aiohttp's parser refuses is 414 JSON as well, telling it apart from a long header."""
    request = b"GET " + LIST_PATH.encode() + b"?q=" + b"Q" * PARSER_LIMIT + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, _, body = await raw_exchange(sim.url, request)
    assert status == 414
    assert gateway_error(body)["error_msg"] == "Request URI too large"
    assert b"QQQQ" not in body


async def test_a_body_beyond_the_limit_is_413_json_and_changes_nothing(sim: Simulator) -> None:
    """A body over max_body_bytes (12 MB by default [DOC]) is 413 APIGW.0201, declared or chunked, and not applied."""
    assert SimulatorConfig().max_body_bytes == 12 * 1024 * 1024
    sim.set_config(max_body_bytes=1000)
    url = f"{sim.url}/v3/{P}/instances/{I1}/proxy/{X}/session-consistence"
    payload = json.dumps({"session_consistence": "true", "padding": "p" * 2000}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 500):
            yield payload[start : start + 500]

    async with aiohttp.ClientSession(headers={"X-Auth-Token": BIG_TOKEN}) as http:
        for data in (payload, chunks()):
            async with http.put(url, data=data, headers={"Content-Type": "application/json"}) as response:
                body = await response.read()
                assert response.status == 413
                assert gateway_error(body)["error_msg"] == "Request entity too large"
                assert b"pppp" not in body
    assert sim.stats.jobs_created == 0
    assert sim.stats.by_status() == {413: 2}


async def test_a_malformed_request_is_400_json_without_content(sim: Simulator) -> None:
    """A request aiohttp cannot parse gets the gateway's 400 JSON [INF], not aiohttp's text quoting it."""
    status, _, body = await raw_exchange(sim.url, b"GET /v3/\x00MIIsecret HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400
    assert gateway_error(body)["error_msg"] == "Bad request"
    assert b"MIIsecret" not in body


@pytest.mark.parametrize("name", ["max_header_bytes", "max_uri_bytes"])
@pytest.mark.parametrize("value", [0, PARSER_LIMIT])
def test_header_and_uri_limits_stay_below_the_parser_limit(name: str, value: int) -> None:
    """The configurable limits must be positive and well below aiohttp's parser limits, fixed at start."""
    with pytest.raises(ValueError, match=name):
        SimulatorConfig(**{name: value})
