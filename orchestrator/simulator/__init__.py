"""A local stand-in for the GaussDB(for MySQL)/TaurusDB proxy-consistency API, with injectable faults.

Built from /work/shared/api-contract.md; every [UNK]/[INF] point is a `SimulatorConfig` switch. The product
imports this package only for `--simulate`; it imports nothing of the engine, API client or CLI.
"""

from .auth import AkSkAuth, AnyOf, Authenticator, Lockout, TokenAuth, WireRequest, authenticator_for
from .config import HOSTILE_MODES, AccessKey, Faults, IamUser, SimulatorConfig, parse_faults
from .errors import ApiError, GatewayError, IamError
from .fleet import fleet_from_plan, generated_proxy_ids, initial_mode
from .from_env import SimulatorAuth, simulator_auth_from_env
from .iam import IssuedToken, TokenIssuer
from .server import Simulator, run_simulator
from .state import JOB_NAME, Fleet, Instance, Job, Proxy
from .stats import RequestRecord, Stats

__all__ = [
    "HOSTILE_MODES",
    "JOB_NAME",
    "AccessKey",
    "AkSkAuth",
    "AnyOf",
    "ApiError",
    "Authenticator",
    "Faults",
    "Fleet",
    "GatewayError",
    "IamError",
    "IamUser",
    "Instance",
    "IssuedToken",
    "Job",
    "Lockout",
    "Proxy",
    "RequestRecord",
    "Simulator",
    "SimulatorAuth",
    "SimulatorConfig",
    "Stats",
    "TokenAuth",
    "TokenIssuer",
    "WireRequest",
    "authenticator_for",
    "fleet_from_plan",
    "generated_proxy_ids",
    "initial_mode",
    "parse_faults",
    "run_simulator",
    "simulator_auth_from_env",
]
