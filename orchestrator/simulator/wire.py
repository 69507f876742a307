"""The gateway on the wire, below routing: request size limits, and aiohttp's parser refusals made gateway-like.

aiohttp's server answers a request its parser refuses (an over-long header or request line, too many headers,
bad syntax) with a plain-text 400 that quotes up to 100 bytes of the offending line: a multi-KB IAM token would
land in the client's error message. Here its limits are raised far above the gateway's (`PARSER_LIMIT`), the
gateway's own limits are checked on the parsed request (`oversized`), and whatever the parser still refuses is
answered through a callback with the gateway's JSON (`GatewayServer`), quoting nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from .config import PARSER_LIMIT, SimulatorConfig

Refuse = Callable[[int], web.StreamResponse]  # the gateway's JSON answer for an HTTP status

# aiohttp's parser limits (fixed at start, far above the configurable gateway limits). The request line's limit is
# one byte more than a header field's so that a `LineTooLong` tells which of the two overflowed (414 vs 494).
# Many small headers are the gateway's business (their total size), not aiohttp's default cap of 128 of them.
PARSER_ARGS: Mapping[str, int] = {
    "max_line_size": PARSER_LIMIT + 1,
    "max_field_size": PARSER_LIMIT,
    "max_headers": 4096,
}


class _GatewayProtocol(RequestHandler):
    """aiohttp's connection handler, answering requests its parser refused the way the gateway would."""

    __slots__ = ("_refuse",)

    def __init__(self, manager: web.Server, refuse: Refuse, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._refuse = refuse

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        # Not super(): it logs and answers the exception text, which quotes up to 100 bytes of the request.
        if isinstance(exc, LineTooLong):
            status = 414 if exc.args[1:2] == (PARSER_ARGS["max_line_size"],) else 494
        else:
            status = 494 if "Too many headers" in exc.message else 400
        response = self._refuse(status)
        response.force_close()
        return response


class GatewayServer(web.Server):
    """aiohttp's low-level server, with `_GatewayProtocol` connections."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Any],
        refuse: Refuse,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._refuse = refuse

    def __call__(self) -> RequestHandler:
        # aiohttp's own __call__ builds a plain RequestHandler from these same two attributes
        return _GatewayProtocol(self, self._refuse, loop=self._loop, **self._kwargs)


def oversized(request: web.BaseRequest, config: SimulatorConfig) -> int | None:
    """494/414/413 if the request exceeds the gateway's limits [§8 APIGW.0201], else None."""
    lines = [len(name) + 2 + len(value) for name, value in request.raw_headers]  # "Name: value"
    if any(size > config.max_header_bytes for size in lines) or sum(lines) > 4 * config.max_header_bytes:
        return 494
    if len(request.raw_path.encode()) > config.max_uri_bytes:
        return 414
    if (request.content_length or 0) > config.max_body_bytes:
        return 413
    return None


async def read_body(request: web.BaseRequest, limit: int) -> bytes | None:
    """The whole body, or None once it grows beyond `limit` (a chunked body has no Content-Length to check)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
