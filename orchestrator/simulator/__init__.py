"""A local stand-in for the GaussDB(for MySQL)/TaurusDB proxy-consistency API, with injectable faults.

Built from /work/shared/api-contract.md; every [UNK]/[INF] point is a `SimulatorConfig` switch. The product
imports this package only for `--simulate`; it imports nothing of the engine, API client or CLI.
"""

from .auth import AnyOf, Authenticator, TokenAuth, WireRequest
from .config import Faults, SimulatorConfig, parse_faults
from .errors import ApiError, GatewayError
from .fleet import fleet_from_plan, generated_proxy_ids, initial_mode
from .server import Simulator, run_simulator
from .state import JOB_NAME, Fleet, Instance, Job, Proxy
from .stats import RequestRecord, Stats

__all__ = [
    "JOB_NAME",
    "AnyOf",
    "ApiError",
    "Authenticator",
    "Faults",
    "Fleet",
    "GatewayError",
    "Instance",
    "Job",
    "Proxy",
    "RequestRecord",
    "Simulator",
    "SimulatorConfig",
    "Stats",
    "TokenAuth",
    "WireRequest",
    "fleet_from_plan",
    "generated_proxy_ids",
    "initial_mode",
    "parse_faults",
    "run_simulator",
]
