"""What the simulator saw: every request, counted at the wire, answered or not; and its one-line log form."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class RequestRecord:
    at: float  # arrival time on the simulator's (injected) clock
    method: str
    route: str  # "put_consistency" | "list_proxies" | "get_job" | "list_jobs" | "iam_tokens" | "unknown"
    status: int | None = None  # None: not answered (yet, or dropped: see `fault`)
    fault: str | None = None  # the injected fault that shaped the answer, if any
    request_id: str = ""
    project_id: str | None = None
    instance_id: str | None = None
    proxy_id: str | None = None


@dataclass(slots=True)
class Stats:
    requests: list[RequestRecord] = field(default_factory=list)
    # PUTs received per proxy, keyed (project_id, instance_id, proxy_id) like `Target.key`; faulted ones too
    puts_by_proxy: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # jobs created per proxy, same key: the changes the service actually accepted
    jobs_by_proxy: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    jobs_created: int = 0

    def arrived(self, record: RequestRecord) -> int:
        """Record a request on arrival; returns its index for `answered`."""
        self.requests.append(record)
        if record.route == "put_consistency" and record.proxy_id is not None:
            assert record.project_id is not None
            assert record.instance_id is not None
            self.puts_by_proxy[(record.project_id, record.instance_id, record.proxy_id)] += 1
        return len(self.requests) - 1

    def answered(self, index: int, status: int | None, fault: str | None = None) -> None:
        self.requests[index] = replace(self.requests[index], status=status, fault=fault)

    def job_created(self, key: tuple[str, str, str]) -> None:
        self.jobs_created += 1
        self.jobs_by_proxy[key] += 1

    def count(self, route: str | None = None, status: int | None = None, fault: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (route is None or r.route == route)
            and (status is None or r.status == status)
            and (fault is None or r.fault == fault)
        )

    def by_status(self, route: str | None = None) -> Counter[int | None]:
        return Counter(r.status for r in self.requests if route is None or r.route == route)

    def max_in_window(self, seconds: float, route: str | None = None) -> int:
        """The largest number of requests whose arrivals fit in any window [t, t + seconds)."""
        times = sorted(r.at for r in self.requests if route is None or r.route == route)
        best = start = 0
        for end, t in enumerate(times):
            while t - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best


def _outcome(record: RequestRecord) -> str:
    if record.status is None:
        return f"dropped ({record.fault})" if record.fault else "unanswered"
    return f"{record.status} ({record.fault})" if record.fault else str(record.status)


def log_line(record: RequestRecord, elapsed: float) -> str:
    """One request for `simulate -v`: method, route, ids, status or fault, elapsed ms; no credential, no body."""
    ids = " ".join(
        f"{name}={value}"
        for name, value in (
            ("project", record.project_id),
            ("instance", record.instance_id),
            ("proxy", record.proxy_id),
        )
        if value
    )
    return " ".join(
        part
        for part in (record.method or "?", record.route, ids, "->", _outcome(record), f"{elapsed * 1000:.0f} ms")
        if part
    )
