"""What the simulator does: fault probabilities and the switches for every [UNK]/[INF] point of the contract.

Every switch whose answer the contract could not confirm names its section of /work/shared/api-contract.md,
so a test can make the simulator give each plausible answer of the real service, not only our best guess.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Final

# [UNK §3, §12] The answer to /jobs?id= for a job id that does not exist or is not visible yet.
# Values are (status, error_code, error_msg); "empty" answers 200 {"job": {}} and "null" 200 {"job": null}.
JOB_NOT_FOUND_ANSWERS: Final[dict[str, tuple[int, str, str]]] = {
    "404": (404, "DBS.200002", "The job does not exist."),  # [INF] code of "instance does not exist"
    "400": (400, "DBS.200001", "Parameter error."),  # [INF] an unknown id as a bad parameter
    "empty": (200, "", ""),
    "null": (200, "", ""),
}

# [UNK §10, §12] PUT asking for the mode the proxy already has.
# "job": a normal job that changes nothing; "nojob": 200 {}; "null": 200 {"job_id": null} (Terraform's note
# on the sibling port API says "the job_id is null"); "error": 400 DBS.200001.
NOOP_ANSWERS: Final[frozenset[str]] = frozenset({"job", "nojob", "null", "error"})

# [INF §8] Unknown instance (or unknown project): DBS.200002 "The DB instance does not exist." is from the RDS
# table; Terraform treats DBS.200932 at 409 and DBS.201028 at 400 as "gone" for TaurusDB proxies.
INSTANCE_NOT_FOUND_ANSWERS: Final[dict[str, tuple[int, str, str]]] = {
    "404": (404, "DBS.200002", "The DB instance does not exist."),
    "409": (409, "DBS.200932", "The DB instance does not exist."),
    "400": (400, "DBS.201028", "The DB instance does not exist."),
}

# [INF §8] Unknown proxy of a known instance: Terraform's parseMysqlProxyError treats DBS.201028 at 400 as
# "proxy not found"; the TaurusDB page has a "proxy doesn't exist" code whose number is [UNK].
PROXY_NOT_FOUND_ANSWERS: Final[dict[str, tuple[int, str, str]]] = {
    "400": (400, "DBS.201028", "The proxy instance does not exist."),
    "404": (404, "DBS.201028", "The proxy instance does not exist."),
}

# [INF §8, §10] 409 codes meaning "another operation is running"; DBS.200019 is the RDS-table one, the others
# are Terraform's TaurusDB retryErrCodes (their messages are [UNK]).
BUSY_ERROR_CODES: Final[frozenset[str]] = frozenset(
    {"DBS.200019", "DBS.201014", "DBS.201015", "DBS.200047", "DBS.05000084", "DBS.212033"}
)
BUSY_MESSAGE: Final = "Another operation is being performed on the DB instance or the DB instance is faulty."

# [UNK §10, §12] A PUT for another proxy of an instance that already has a job in flight:
# "reject" answers 409 (our design assumption), "queue" accepts it and the job stays Pending until the
# instance's earlier jobs end, "allow" runs it at once (a second PUT for the *same* proxy still gets 409).
SAME_INSTANCE_POLICIES: Final[frozenset[str]] = frozenset({"reject", "queue", "allow"})

# GET /v3/{project_id}/immediate-jobs [§3, SRC ListImmediateJobsRequest docstrings]: limit is one of 10, 20, 50,
# default 10; any other value is refused with 400 DBS.200001 [INF]. The status filter accepts the SDK's four values
# and the two the 2025/2026 docs add.
IMMEDIATE_JOB_LIMITS: Final[tuple[int, ...]] = (10, 20, 50)
IMMEDIATE_JOB_DEFAULT_LIMIT: Final = 10
JOB_STATUSES: Final[frozenset[str]] = frozenset(
    {"Pending", "Running", "Completed", "Failed", "Unauthorized", "Canceled"}
)

# [UNK §3] How the immediate-jobs listing shows a job that /jobs?id= calls "Pending": the SDK describes "Pending"
# as a *delayed* (scheduled) task, so an immediate job waiting its turn may well be listed as "Running".
IMMEDIATE_JOBS_PENDING: Final[frozenset[str]] = frozenset({"Pending", "Running"})

# [UNK §3] What `offset` means in the immediate-jobs listing: the SDK docstring says "skip offset records" (an
# index) yet "default 1" (which reads like a 1-based page number). "index": skip `offset` jobs, default 0;
# "page": `offset` is a 1-based page number of `limit` jobs, default 1 (0 is taken as 1).
IMMEDIATE_JOBS_OFFSETS: Final[frozenset[str]] = frozenset({"index", "page"})

# Gateway size limits [§8 APIGW.0201 rows]. The body limit is documented (12 MB for AK/SK, §6); the header and URI
# limits are [INF]: the gateway answers nginx's 494/414, and nginx's usual `large_client_header_buffers 4 32k`
# allows one header line or request target up to 32 KiB and all header lines together up to 4 × that.
MAX_BODY_BYTES: Final = 12 * 1024 * 1024
MAX_HEADER_BYTES: Final = 32 * 1024
MAX_URI_BYTES: Final = 32 * 1024
# aiohttp's own parser limits, fixed when the server starts: far above ours, so the gateway's JSON answers (not
# aiohttp's plain-text 400) refuse almost everything; beyond them the server still answers the gateway's JSON.
PARSER_LIMIT: Final = 8 * 1024 * 1024

# Hostile answers (see hostile.py): what a broken gateway or backend might send instead of the contract's JSON.
# The modes in HOSTILE_BEFORE_BACKEND answer in place of the service (nothing is applied); the others mangle the
# answer the backend already gave (a PUT's change IS applied).
HOSTILE_MODES: Final[frozenset[str]] = frozenset(
    {
        "truncated_json",
        "html_error",
        "gzip_bomb",
        "huge_body",
        "wrong_content_type",
        "slow_drip",
        "reset_mid_body",
        "redirect_other_host",
    }
)
HOSTILE_BEFORE_BACKEND: Final[frozenset[str]] = frozenset({"html_error", "redirect_other_host"})
HOSTILE_ROUTES: Final[frozenset[str]] = frozenset({"put_consistency", "list_proxies", "get_job", "list_jobs"})

# Which credentials the gateway accepts [§5-§7]: IAM tokens (X-Auth-Token), AK/SK signatures, or either.
AUTH_MODES: Final[frozenset[str]] = frozenset({"token", "aksk", "both"})


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Faults:
    """Per-request fault probabilities, decided by a `random.Random(seed)`: runs are reproducible."""

    error_500: float = 0.0  # 500 DBS.05000000 "server error."; the change is NOT applied
    throttle_429: float = 0.0  # 429 APIGW.0308 from the gateway (body carries request_id); NOT applied
    retry_after: float | None = 1.0  # Retry-After on injected 429s ("1", "0.25"); None: no header [UNK §8]
    drop_before: float = 0.0  # close the connection without answering; the change is NOT applied
    drop_after: float = 0.0  # PUT only: apply the change (create the job), then close without answering
    # latency and stall are real seconds (asyncio.sleep), not the injected clock's
    latency: float = 0.0  # seconds added before answering every request
    # probability of holding a request `stall_seconds` (beyond the client's timeout) before handling it as
    # usual: a stalled PUT is applied late, after its client gave up; closing the simulator drops it instead
    stall: float = 0.0
    stall_seconds: float = 60.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_500", "throttle_429", "drop_before", "drop_after", "stall"):
            _check_probability(name, getattr(self, name))
        _check_non_negative("latency", self.latency)
        _check_non_negative("stall_seconds", self.stall_seconds)
        if self.retry_after is not None:
            _check_non_negative("retry_after", self.retry_after)


def _mask(value: str) -> str:
    return f"{value[:4]}…{value[-4:]}" if len(value) >= 12 else "…"


@dataclass(frozen=True, slots=True, repr=False)
class AccessKey:
    """A key pair the gateway knows; with `security_token` it is temporary and X-Security-Token must be signed."""

    ak: str
    sk: str
    security_token: str | None = None

    def __post_init__(self) -> None:
        if not self.ak or not self.sk or self.security_token == "":
            raise ValueError("an access key needs a non-empty AK and SK (and, if given, security token)")

    def __repr__(self) -> str:
        token = "'***'" if self.security_token else "None"
        return f"AccessKey(ak='{_mask(self.ak)}', sk='***', security_token={token})"


@dataclass(frozen=True, slots=True, repr=False)
class IamUser:
    """An IAM user who may get a token at `POST /v3/auth/tokens` [§7]; `domain` is the account name."""

    name: str
    password: str
    domain: str

    def __post_init__(self) -> None:
        if not self.name or not self.password or not self.domain:
            raise ValueError("an IAM user needs a non-empty name, password and domain")

    def __repr__(self) -> str:
        return f"IamUser(name={self.name!r}, password='***', domain={self.domain!r})"


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """How the simulated service answers; change it at run time with `Simulator.config = replace(...)`."""

    # tokens are secrets: kept out of the repr
    tokens: frozenset[str] | None = field(default=None, repr=False)  # accepted X-Auth-Token values; None: any
    expired_tokens: frozenset[str] = field(default=frozenset(), repr=False)  # 401 APIGW.0307 [§7]
    # Account-level throttling [§8]: at most `account_rate` service calls per second per project (a token
    # bucket of `account_burst`, default one second's worth), else 429 APIGW.0308, with a whole-second
    # Retry-After when `account_retry_after` (its presence on real 429s is [UNK]). None: off.
    account_rate: float | None = None
    account_burst: float | None = None
    account_retry_after: bool = True
    job_duration: float = 1.0  # seconds a job is Running; the proxy's mode changes when it completes
    job_pending: float = 0.0  # seconds a new job shows "Pending" before "Running" [§3 status values]
    job_visibility_delay: float = 0.0  # a new job id is "not found" on /jobs for this long [DOC §3]
    job_not_found: str = "404"  # [UNK §3] key of JOB_NOT_FOUND_ANSWERS
    job_fail_rate: float = 0.0  # probability that a job ends Failed (the proxy's mode is left unchanged)
    fail_proxies: frozenset[str] = frozenset()  # proxy ids whose jobs always end Failed (for targeted tests)
    noop: str = "job"  # [UNK §10] key of NOOP_ANSWERS
    list_default_limit: int = 100  # [DOC vs SRC conflict §2]: 100 per the 2026 doc, 10 per the SDK docstring
    same_instance: str = "reject"  # [UNK §10] key of SAME_INSTANCE_POLICIES
    busy_error_code: str = "DBS.200019"  # [INF §8] the 409 code while the instance is busy
    instance_not_found: str = "404"  # [INF §8] key of INSTANCE_NOT_FOUND_ANSWERS
    proxy_not_found: str = "400"  # [INF §8] key of PROXY_NOT_FOUND_ANSWERS
    status_during_job: str = "ACTIVE"  # [UNK §2] proxy.status shown while its consistency job is in flight
    require_json_content_type: bool = True  # PUT without an application/json Content-Type -> 400 [INF §1]
    immediate_jobs_pending: str = "Pending"  # [UNK §3] key of IMMEDIATE_JOBS_PENDING
    immediate_jobs_offset: str = "index"  # [UNK §3] key of IMMEDIATE_JOBS_OFFSETS
    # --- the gateway's size limits [§8 APIGW.0201]: 494 headers / 414 URI / 413 body, JSON, nothing echoed ---------
    max_header_bytes: int = MAX_HEADER_BYTES  # one header line ("Name: value"); all lines together: 4 × this [INF]
    max_uri_bytes: int = MAX_URI_BYTES  # the request target, path and query [INF]
    max_body_bytes: int = MAX_BODY_BYTES  # [DOC §6, §8] 12 MB
    faults: Faults = field(default_factory=Faults)
    # --- who may call [§5-§8]; "token" with tokens=None accepts any non-empty X-Auth-Token ------------------
    auth_mode: str = "token"  # key of AUTH_MODES
    access_keys: tuple[AccessKey, ...] = ()  # AK/SK pairs whose signatures are accepted [§6]
    max_skew: float = 900.0  # seconds X-Sdk-Date may differ from the simulator's wall clock [DOC §6: 15 min]
    aksk_lock_after: int = 5  # more than this many consecutive AK/SK failures lock the AK [DOC §6]
    aksk_lock_seconds: float = 300.0  # for this long [DOC §6: 5 min]
    # [UNK §11] whether the gateway insists on X-Project-Id == the path's project for AK/SK (the issue says so)
    require_project_header: bool = True
    iam_users: tuple[IamUser, ...] = ()  # who may get a token at POST /v3/auth/tokens [§7]
    iam_projects: Mapping[str, str] = field(default_factory=dict)  # project name (a region) -> project id
    token_lifetime: float = 86400.0  # seconds an issued token is valid [DOC §7: 24 h]
    # --- hostile answers (hostile.py): None, or a key of HOSTILE_MODES, for the routes in hostile_routes --------
    hostile: str | None = None
    hostile_routes: frozenset[str] = frozenset({"put_consistency"})
    hostile_redirect_to: str = "http://127.0.0.1:9"  # redirect_other_host: where the 307 points (+ the path)
    hostile_drip_seconds: float = 1.0  # slow_drip: seconds between two bytes of the body

    def __post_init__(self) -> None:
        _choose("auth_mode", self.auth_mode, AUTH_MODES)
        _choose("job_not_found", self.job_not_found, JOB_NOT_FOUND_ANSWERS)
        _choose("noop", self.noop, NOOP_ANSWERS)
        _choose("same_instance", self.same_instance, SAME_INSTANCE_POLICIES)
        _choose("busy_error_code", self.busy_error_code, BUSY_ERROR_CODES)
        _choose("instance_not_found", self.instance_not_found, INSTANCE_NOT_FOUND_ANSWERS)
        _choose("proxy_not_found", self.proxy_not_found, PROXY_NOT_FOUND_ANSWERS)
        _choose("immediate_jobs_pending", self.immediate_jobs_pending, IMMEDIATE_JOBS_PENDING)
        _choose("immediate_jobs_offset", self.immediate_jobs_offset, IMMEDIATE_JOBS_OFFSETS)
        _check_probability("job_fail_rate", self.job_fail_rate)
        if self.hostile is not None:
            _choose("hostile", self.hostile, HOSTILE_MODES)
        if not self.hostile_routes <= HOSTILE_ROUTES:
            unknown = sorted(self.hostile_routes - HOSTILE_ROUTES)
            raise ValueError(f"hostile_routes must be among {sorted(HOSTILE_ROUTES)}, got {unknown!r}")
        for name in ("max_header_bytes", "max_uri_bytes"):
            if not 1 <= getattr(self, name) <= PARSER_LIMIT // 2:  # below the parser's limits, fixed at start
                raise ValueError(f"{name} must be in 1..{PARSER_LIMIT // 2}, got {getattr(self, name)!r}")
        if self.max_body_bytes < 0:
            raise ValueError(f"max_body_bytes must be >= 0, got {self.max_body_bytes!r}")
        for name in (
            "job_duration",
            "job_pending",
            "job_visibility_delay",
            "max_skew",
            "aksk_lock_seconds",
            "hostile_drip_seconds",
        ):
            _check_non_negative(name, getattr(self, name))
        if not 1 <= self.list_default_limit <= 100:
            raise ValueError(f"list_default_limit must be in 1..100, got {self.list_default_limit!r}")
        if self.tokens is not None and not all(self.tokens):
            raise ValueError("tokens must be non-empty strings")
        if self.token_lifetime <= 0:
            raise ValueError(f"token_lifetime must be > 0, got {self.token_lifetime!r}")
        if self.aksk_lock_after < 0:
            raise ValueError(f"aksk_lock_after must be >= 0, got {self.aksk_lock_after!r}")
        if len({key.ak for key in self.access_keys}) != len(self.access_keys):
            raise ValueError("access_keys name the same AK twice")


def _choose(name: str, value: str, choices: Collection[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def parse_faults(spec: str, base: Faults | None = None) -> Faults:
    """`Faults` from a CLI-style spec like "error_500=0.1,throttle_429=0.05,retry_after=none,seed=3"."""
    types = {f.name: f.type for f in fields(Faults)}
    changes: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in types:
            raise ValueError(f"bad fault {item!r}: expected NAME=VALUE with NAME one of {sorted(types)}")
        raw = raw.strip()
        try:
            if name == "seed":
                changes[name] = int(raw)
            elif name == "retry_after" and raw.lower() in ("none", ""):
                changes[name] = None
            else:
                changes[name] = float(raw)
        except ValueError:
            raise ValueError(f"bad fault {item!r}: {raw!r} is not a number") from None
    return replace(base or Faults(), **changes)  # type: ignore[arg-type]
