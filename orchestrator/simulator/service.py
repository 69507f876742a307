"""The simulated DBS backend: how the four APIs answer, given the fleet, the config and the time.

Pure: no sockets and no sleeping. The server has already authenticated the request and decided its faults;
here a request becomes a `Reply` (status + JSON body) or raises an `ApiError`. Section numbers refer to
/work/shared/api-contract.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.plan import MODES

from .config import (
    IMMEDIATE_JOB_DEFAULT_LIMIT,
    IMMEDIATE_JOB_LIMITS,
    INSTANCE_NOT_FOUND_ANSWERS,
    JOB_NOT_FOUND_ANSWERS,
    JOB_STATUSES,
    PROXY_NOT_FOUND_ANSWERS,
    SimulatorConfig,
)
from .errors import ApiError, busy, parameter_error, request_is_null
from .state import JOB_NAME, TIME_FORMAT, Fleet, Instance, Job, Proxy

_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any  # JSON-serialisable
    job: Job | None = None  # the job this request created, if any
    headers: Mapping[str, str] = field(default_factory=dict)  # extra response headers (X-Subject-Token)


def parse_change(body: bytes) -> str:
    """The mode a PUT body asks for [§1]; raises 400 DBS.200006 (empty) or DBS.200001 (anything invalid)."""
    if not body.strip():
        raise request_is_null()
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise parameter_error("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise parameter_error("The request body must be a JSON object.")
    flag = data.get("session_consistence")
    # The doc/SDK type is the string "true"/"false"; Terraform sends a JSON bool and works against the cloud,
    # so both are accepted [§1 SRC terraform, INF]. Anything else (null, "True", 1) is refused.
    if flag is None:
        raise parameter_error("session_consistence is mandatory.")
    if isinstance(flag, bool):
        session = flag
    elif isinstance(flag, str) and flag in ("true", "false"):
        session = flag == "true"
    else:
        raise parameter_error('session_consistence must be "true" or "false".')
    mode = data.get("consistence_mode")
    if mode is None or mode == "":
        # Empty/absent consistence_mode: session_consistence decides [DOC §1]; true -> session and
        # false -> eventual (the proxy default, per Terraform's docs) is [INF].
        return "session" if session else "eventual"
    if mode not in MODES:
        raise parameter_error(f"consistence_mode must be one of {', '.join(MODES)}.")
    return str(mode)  # when set, consistence_mode wins over session_consistence [INF §1]


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json"


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= (high if high is not None else int(raw)):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise parameter_error(f"{name} must be an integer in {bounds}.")
    return int(raw)


def _choice(table: Mapping[str, tuple[int, str, str]], key: str) -> ApiError:
    status, code, message = table[key]
    return ApiError(status, code, message)


def _new_job_id() -> str:
    return str(uuid.uuid4())


class Backend:
    """Answers the APIs of contract §1-§3 from a `Fleet`; the config is passed per call (it may change)."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        new_job_id: Callable[[], str] = _new_job_id,
        job_fails: Callable[[float], bool] = lambda rate: False,
    ) -> None:
        self.fleet = fleet
        self._new_job_id = new_job_id
        self._job_fails = job_fails

    # --- PUT .../proxy/{proxy_id}/session-consistence [§1] ------------------------------------------------

    def change_consistency(
        self,
        config: SimulatorConfig,
        project_id: str,
        instance_id: str,
        proxy_id: str,
        body: bytes,
        content_type: str | None,
        now: float,
    ) -> Reply:
        if body.strip() and config.require_json_content_type and not _is_json(content_type):
            raise parameter_error("Content-Type must be application/json.")
        mode = parse_change(body)
        instance = self._instance(config, project_id, instance_id, now)
        proxy = instance.proxies.get(proxy_id)
        if proxy is None:
            raise _choice(PROXY_NOT_FOUND_ANSWERS, config.proxy_not_found)
        after = self._check_busy(config, proxy, now)
        if proxy.consistence_mode == mode and config.noop != "job":
            return self._noop(config)
        fails = proxy_id in config.fail_proxies or self._job_fails(config.job_fail_rate)
        job = self.fleet.start_job(
            self._new_job_id(),
            proxy,
            mode,
            now=now,
            duration=config.job_duration,
            pending=config.job_pending,
            visibility_delay=config.job_visibility_delay,
            after=after,
            fail_reason=f"Failed to modify the consistency mode of proxy {proxy_id}." if fails else "",
        )
        return Reply(200, {"job_id": job.id}, job)

    def _check_busy(self, config: SimulatorConfig, proxy: Proxy, now: float) -> float | None:
        """Raise 409 if the instance (or proxy) is busy; in "queue" mode return when the new job may start."""
        in_flight = self.fleet.jobs_in_flight(proxy.project_id, proxy.instance_id, now)
        if config.same_instance == "queue":
            return max((j.ends for j in in_flight), default=None)
        if config.same_instance == "allow":
            in_flight = [j for j in in_flight if j.proxy_id == proxy.pool_id]
        if in_flight:
            raise busy(config.busy_error_code)  # [§10] one operation at a time per instance
        return None

    @staticmethod
    def _noop(config: SimulatorConfig) -> Reply:
        # [UNK §10] the mode is already the requested one.
        if config.noop == "nojob":
            return Reply(200, {})
        if config.noop == "null":
            return Reply(200, {"job_id": None})
        raise parameter_error("The consistency mode is already the requested one.")

    # --- GET .../instances/{instance_id}/proxies [§2] -----------------------------------------------------

    def list_proxies(
        self, config: SimulatorConfig, project_id: str, instance_id: str, query: Mapping[str, str], now: float
    ) -> Reply:
        offset = _int_param(query, "offset", 0, 0, None)
        limit = _int_param(query, "limit", config.list_default_limit, 1, 100)
        instance = self._instance(config, project_id, instance_id, now)
        busy_proxies = {j.proxy_id for j in self.fleet.jobs_in_flight(project_id, instance_id, now)}
        page = list(instance.proxies.values())[offset : offset + limit]
        # No total_count in the response model [SRC §2]: clients page until a short page.
        return Reply(200, {"proxy_list": [self._render_proxy(config, instance, p, busy_proxies) for p in page]})

    def _render_proxy(
        self, config: SimulatorConfig, instance: Instance, proxy: Proxy, busy_proxies: set[str]
    ) -> dict[str, Any]:
        """One `MysqlShowProxyResponseV3` [§2], with plausible values derived from the proxy id."""
        digest = hashlib.sha256(proxy.pool_id.encode()).hexdigest()
        octet = int(digest[:2], 16)
        status = config.status_during_job if proxy.pool_id in busy_proxies else proxy.status
        nodes = [
            {
                "id": f"{digest[i * 8 : i * 8 + 32]}pn01",
                "status": "ACTIVE",
                "name": f"{proxy.name}_node_{i + 1}",
                "role": "master" if i == 0 else "slave",
                "az_code": "cn-north-4a",
                "frozen_flag": 0,
            }
            for i in range(2)
        ]
        db_node = {
            "id": f"{instance.id[:32]}no01",
            "instance_id": instance.id,
            "status": "ACTIVE",
            "name": f"{instance.name}_node01",
            "weight": 100,
            "availability_zone": [{"code": "cn-north-4a", "description": "AZ1"}],
        }
        return {
            "proxy": {
                "pool_id": proxy.pool_id,
                "status": status,
                "address": f"192.168.{octet}.{int(digest[2:4], 16) % 250 + 2}",
                "port": 3306,
                "pool_status": "ACTIVE",
                "delay_threshold_in_seconds": 30,
                "elb_vip": "",
                "eip": "",
                "vcpus": "2",
                "ram": "8",
                "node_num": len(nodes),
                "type": proxy.type,
                "created_at": self.fleet.wall(proxy.created),
                "updated_at": self.fleet.wall(proxy.updated),
                "support_ap_node": False,
                "mode": "Cluster",
                "nodes": nodes,
                "flavor_ref": "gaussdb.proxy.large.x86.2",
                "name": proxy.name,
                "transaction_split": "OFF",
                "connection_pool_type": "CLOSED",
                "switch_connection_pool_type_enabled": True,
                "route_mode": 0,
                "balance_route_mode_enabled": True,
                "consistence_mode": proxy.consistence_mode,
                "subnet_id": str(uuid.UUID(digest[32:64])),
                "ssl_option": "true",
                "new_node_auto_add_status": "OFF",
                "new_node_weight": 0,
            },
            "master_node": db_node,
            "readonly_nodes": [],
            "htap_nodes": [],
        }

    # --- GET /v3/{project_id}/jobs?id= [§3] ---------------------------------------------------------------

    def get_job(self, config: SimulatorConfig, project_id: str, query: Mapping[str, str], now: float) -> Reply:
        job_id = query.get("id", "")
        if not job_id:
            raise parameter_error("id is mandatory.")
        job = self.fleet.job(project_id, job_id)
        if job is None or now < job.visible:
            return self._job_not_found(config)
        self.fleet.settle(now)
        instance = self.fleet.instance(job.project_id, job.instance_id, now)
        status = job.status(now)
        return Reply(
            200,
            {
                "job": {
                    "id": job.id,
                    "name": JOB_NAME,
                    "status": status,
                    "created": self.fleet.wall(job.created),
                    "ended": self.fleet.wall(job.ends) if status in ("Completed", "Failed") else "",
                    "process": job.process(now),
                    "instance": {"id": job.instance_id, "name": instance.name if instance else ""},
                    "entities": {},
                    "fail_reason": job.fail_reason if status == "Failed" else "",
                }
            },
        )

    # --- GET /v3/{project_id}/immediate-jobs [§3] ---------------------------------------------------------

    def list_immediate_jobs(
        self, config: SimulatorConfig, project_id: str, query: Mapping[str, str], now: float
    ) -> Reply:
        """The project's jobs newest first, filtered, one page of them, and how many matched (`total_count`)."""
        wanted = ImmediateJobsQuery.parse(config, query)
        self.fleet.settle(now)
        # [INF] the listing reads the same store as /jobs?id=: a job not visible there is not listed either
        jobs = [j for j in reversed(self.fleet.project_jobs(project_id)) if now >= j.visible]  # newest first
        matched = [
            (job, status)
            for job, status in ((job, self._listed_status(config, job, now)) for job in jobs)
            if wanted.matches(job.id, JOB_NAME, status, self.fleet.wall_time(job.created))
        ]
        page = matched[wanted.start : wanted.start + wanted.limit]
        return Reply(
            200,
            {
                "jobs": [self._task_detail(job, status, now) for job, status in page],
                "total_count": len(matched),
                # [UNK] action_names ("task names supported as filters"): here the names of the project's jobs
                "action_names": [JOB_NAME] if jobs else [],
            },
        )

    @staticmethod
    def _listed_status(config: SimulatorConfig, job: Job, now: float) -> str:
        status = job.status(now)
        return config.immediate_jobs_pending if status == "Pending" else status  # [UNK] "Pending" or "Running"

    def _task_detail(self, job: Job, status: str, now: float) -> dict[str, Any]:
        """One `TaskDetailInfo` [§3 SRC]; the fields the SDK types as str stay strings, "" when empty [INF]."""
        instance = self.fleet.instance(job.project_id, job.instance_id, now)
        return {
            "instance_id": job.instance_id,
            "instance_name": instance.name if instance else "",
            # [INF] the docstring's values are createfail|creating|normal|abnormal|deleted
            "instance_status": "normal" if instance else "deleted",
            "job_id": job.id,
            "order_id": "",  # [INF] pay-per-use operations have no order
            "job_name": JOB_NAME,
            "status": status,
            "process": job.process(now),  # [INF] like /jobs: "NN%" while Running, else ""
            "created_time": self.fleet.wall(job.created),
            "ended_time": self.fleet.wall(job.ends) if status in ("Completed", "Failed") else "",  # [INF] ""
            "fail_reason": job.fail_reason if status == "Failed" else "",
            "show_detail": False,  # [INF] no ShowTaskDetails page for a consistency change
            "extend_fields": None,  # [DOC] "default null"
        }

    @staticmethod
    def _job_not_found(config: SimulatorConfig) -> Reply:
        # [UNK §3, §12] unknown or not yet visible job id.
        if config.job_not_found == "empty":
            return Reply(200, {"job": {}})
        if config.job_not_found == "null":
            return Reply(200, {"job": None})
        raise _choice(JOB_NOT_FOUND_ANSWERS, config.job_not_found)

    def _instance(self, config: SimulatorConfig, project_id: str, instance_id: str, now: float) -> Instance:
        instance = self.fleet.instance(project_id, instance_id, now)
        if instance is None:
            raise _choice(INSTANCE_NOT_FOUND_ANSWERS, config.instance_not_found)
        return instance


def _time_param(query: Mapping[str, str], name: str) -> datetime | None:
    """A "yyyy-mm-ddThh:mm:ssZ" query time, Z an offset like +0800 [SRC]; anything else is 400 [INF]."""
    raw = query.get(name) or None
    if raw is None:
        return None
    try:
        return datetime.strptime(raw, TIME_FORMAT)
    except ValueError:
        raise parameter_error(f"{name} must look like 2026-01-31T08:00:00+0800.") from None


@dataclass(frozen=True, slots=True)
class ImmediateJobsQuery:
    """The filters and page of GET /immediate-jobs [§3]; an empty filter value means "no filter" [INF]."""

    status: str | None
    job_name: str | None
    job_id: str | None
    start_time: datetime | None
    end_time: datetime | None
    start: int  # index of the first job of the page
    limit: int

    @classmethod
    def parse(cls, config: SimulatorConfig, query: Mapping[str, str]) -> ImmediateJobsQuery:
        status = query.get("status") or None
        if status is not None and status not in JOB_STATUSES:
            raise parameter_error(f"status must be one of {', '.join(sorted(JOB_STATUSES))}.")  # [INF]
        raw_limit = query.get("limit")
        if raw_limit is None:
            limit = IMMEDIATE_JOB_DEFAULT_LIMIT
        elif raw_limit in {str(n) for n in IMMEDIATE_JOB_LIMITS}:
            limit = int(raw_limit)
        else:
            raise parameter_error("limit must be 10, 20 or 50.")  # [SRC values; INF answer]
        if config.immediate_jobs_offset == "page":  # [UNK] offset as a 1-based page number
            page = _int_param(query, "offset", 1, 0, None)
            start = (max(page, 1) - 1) * limit
        else:
            start = _int_param(query, "offset", 0, 0, None)
        return cls(
            status=status,
            job_name=query.get("job_name") or None,
            job_id=query.get("job_id") or None,
            start_time=_time_param(query, "start_time"),
            end_time=_time_param(query, "end_time"),
            start=start,
            limit=limit,
        )

    def matches(self, job_id: str, job_name: str, status: str, created: datetime) -> bool:
        """Exact matches; the time window bounds the creation time, both ends included [INF]."""
        return (
            (self.status is None or status == self.status)
            and (self.job_name is None or job_name == self.job_name)
            and (self.job_id is None or job_id == self.job_id)
            and (self.start_time is None or created >= self.start_time)
            and (self.end_time is None or created <= self.end_time)
        )
