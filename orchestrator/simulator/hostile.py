"""Hostile answers: what a broken gateway, proxy or backend might send instead of the contract's JSON.

`SimulatorConfig.hostile` names one mode; it shapes the answers of the routes in `hostile_routes` (the PUT by
default). Modes in `HOSTILE_BEFORE_BACKEND` answer in place of the service: nothing is applied. The others shape
the answer the backend already gave, so the change (a PUT's job) IS applied and only its answer is bad, which is
the hard case for a client: it must not mistake such a change for one that never happened.

    truncated_json       the backend's JSON cut in half, with a matching Content-Length (applied)
    html_error           502 text/html from a "load balancer" (not applied)
    gzip_bomb            Content-Encoding: gzip, 64 MiB of zeros in about 64 KiB on the wire (applied)
    huge_body            the backend's JSON followed by 8 MiB of padding, streamed (applied)
    wrong_content_type   the backend's JSON labelled text/html (applied)
    slow_drip            headers at once, then one byte of the body per `hostile_drip_seconds` (applied)
    reset_mid_body       headers and half the body, then a TCP reset (applied)
    redirect_other_host  307 to `hostile_redirect_to` + the same path and query (not applied)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import socket
import struct
from typing import Final

from aiohttp import web

from .config import HOSTILE_BEFORE_BACKEND, HOSTILE_MODES, HOSTILE_ROUTES

__all__ = ["HOSTILE_BEFORE_BACKEND", "HOSTILE_MODES", "HOSTILE_ROUTES", "gzip_bomb", "hostile_response"]

GZIP_BOMB_BYTES: Final = 64 * 1024 * 1024
HUGE_BODY_BYTES: Final = 8 * 1024 * 1024
HTML_ERROR_PAGE: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_CHUNK: Final = 64 * 1024


@functools.cache
def gzip_bomb() -> bytes:
    """64 MiB of zeros, gzipped once per process (about 64 KiB)."""
    return gzip.compress(bytes(GZIP_BOMB_BYTES), compresslevel=9)


async def hostile_response(
    request: web.BaseRequest,
    mode: str,
    status: int,
    body: bytes,
    *,
    redirect_to: str,
    drip_seconds: float,
    request_id: str,
) -> web.StreamResponse:
    """The hostile answer for `mode`, given the status and JSON body the backend answered (or would have)."""
    headers = {"X-Request-Id": request_id}
    if mode == "truncated_json":
        return web.Response(status=status, body=body[: max(1, len(body) // 2)], headers=_json(headers))
    if mode == "html_error":
        return web.Response(status=502, body=HTML_ERROR_PAGE, headers={**headers, "Content-Type": "text/html"})
    if mode == "wrong_content_type":
        return web.Response(status=status, body=body, headers={**headers, "Content-Type": "text/html"})
    if mode == "redirect_other_host":
        location = redirect_to.rstrip("/") + request.raw_path
        return web.Response(status=307, headers={**headers, "Location": location})
    if mode == "gzip_bomb":
        bomb = gzip_bomb()
        return web.Response(status=status, body=bomb, headers=_json({**headers, "Content-Encoding": "gzip"}))
    response = web.StreamResponse(status=status, headers=_json(headers))
    if mode == "huge_body":
        response.content_length = len(body) + HUGE_BODY_BYTES
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client hangs up once it has seen enough
            await response.write(body)
            for _ in range(HUGE_BODY_BYTES // _CHUNK):
                await response.write(b" " * _CHUNK)
        return response
    if mode == "slow_drip":
        response.content_length = len(body)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for index in range(len(body)):
                await response.write(body[index : index + 1])
                await asyncio.sleep(drip_seconds)
        return response
    if mode == "reset_mid_body":
        response.content_length = len(body)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(body[: len(body) // 2])
            await asyncio.sleep(0.05)  # let the half body leave before the reset
        _reset(request)
        return response
    raise ValueError(f"unknown hostile mode {mode!r}")


def _json(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Content-Type": "application/json;charset=utf-8"}


def _reset(request: web.BaseRequest) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), not a polite FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
