"""One instance's proxy listing: every page, read through the Caller, or why it could not be read.

The engine reads each instance once before it changes anything there, again after a PUT whose answer was lost
(lostanswers.py), and once more to verify waited jobs (verifying.py). A function, not engine methods: a listing
needs only the API, the Caller and the two ids.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable
from dataclasses import dataclass

from .api import PAGE_LIMIT, ProxyApi, Reply
from .calls import Caller, CallResult
from .preview import ListingError, ObservedProxy, parse_proxy_page

MAX_PAGES = 1000  # 100 per page: far beyond any real instance, but a broken server cannot loop us forever


@dataclass(frozen=True, slots=True)
class InstanceView:
    """One instance's listing, or why it could not be read."""

    proxies: tuple[ObservedProxy, ...] | None
    call: CallResult
    problem: str | None = None

    def failure(self) -> str:
        """Why the listing could not be read, in one line: the service's answer, the transport, or the body."""
        return self.problem if self.problem is not None else self.call.failure()


async def list_instance(api: ProxyApi, caller: Caller, project_id: str, instance_id: str) -> InstanceView:
    """Every proxy of one instance, all pages (contract §2: no total_count; stop at a short page)."""
    proxies: list[ObservedProxy] = []
    offset = 0
    attempts = wire = 0
    for _ in range(MAX_PAGES):
        caller.stats.listings += 1
        call = await caller.call("list", functools.partial(_list_page, api, project_id, instance_id, offset))
        attempts += call.attempts
        wire += call.wire
        total = CallResult(call.reply, call.error, attempts, wire)
        if not call.ok:
            return InstanceView(None, total)
        assert call.reply is not None
        if call.reply.body is None:
            return InstanceView(None, total, problem="the listing is not JSON (cut short or garbled)")
        try:
            page = parse_proxy_page(call.reply.body)
        except ListingError as exc:
            return InstanceView(None, total, problem=f"unexpected listing: {exc}")
        proxies.extend(page)
        if len(page) < PAGE_LIMIT:
            return InstanceView(tuple(proxies), total)
        offset += len(page)
    return InstanceView(None, total, problem=f"listing did not end after {MAX_PAGES} pages")


def _list_page(api: ProxyApi, project_id: str, instance_id: str, offset: int) -> Awaitable[Reply]:
    return api.list_proxies(project_id, instance_id, offset=offset, limit=PAGE_LIMIT)
