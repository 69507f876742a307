"""The simulator accepts the credentials the client would use: read from the same variables, the same way.

`simulator_auth_from_env(env, read_file)` reads each group that `orchestrator.credentials` knows, through
`discover_credentials` itself (so a half-set group is the same `UsageError` the client would raise):

    AK/SK     HUAWEICLOUD_SDK_AK + _SK (+ _SECURITY_TOKEN), or the SDK credentials file -> that key pair
    token     HUAWEICLOUD_AUTH_TOKEN                                                   -> that token
    password  HUAWEICLOUD_USERNAME + _PASSWORD + _DOMAIN_NAME                          -> that IAM user

Every group that is set is accepted (the client picks one by precedence; the simulator takes them all).
Nothing set: any non-empty X-Auth-Token is accepted, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from orchestrator.credentials import (
    ENV_AK,
    ENV_AUTH_TOKEN,
    ENV_CREDENTIALS_FILE,
    ENV_DOMAIN_NAME,
    ENV_PASSWORD,
    ENV_PROJECT_ID,
    ENV_SECURITY_TOKEN,
    ENV_SK,
    ENV_USERNAME,
    AkSkCredentials,
    PasswordCredentials,
    TokenCredentials,
    discover_credentials,
)

from .config import AccessKey, IamUser, SimulatorConfig

_AKSK_VARIABLES: Final = (ENV_AK, ENV_SK, ENV_SECURITY_TOKEN, ENV_PROJECT_ID, ENV_CREDENTIALS_FILE)
_PASSWORD_VARIABLES: Final = (ENV_USERNAME, ENV_PASSWORD, ENV_DOMAIN_NAME)
_NONE_FOUND: Final = "no AK/SK"  # a stand-in token: what discover_credentials falls back to when no key is set


@dataclass(frozen=True, slots=True)
class SimulatorAuth:
    """Who the simulator accepts; `apply(config)` puts it into a `SimulatorConfig`."""

    auth_mode: str = "token"  # "token", "aksk" or "both", as in SimulatorConfig
    tokens: frozenset[str] | None = None  # None: any non-empty token (nothing was set)
    access_keys: tuple[AccessKey, ...] = ()
    iam_users: tuple[IamUser, ...] = ()
    iam_projects: Mapping[str, str] = field(default_factory=dict)  # project name (region) -> id
    accepted: tuple[str, ...] = ()  # one masked description per accepted credential, for a start-up line

    def apply(self, config: SimulatorConfig) -> SimulatorConfig:
        """`config` with these credentials (and IAM projects, if any were given) and nothing else changed."""
        return replace(
            config,
            auth_mode=self.auth_mode,
            tokens=self.tokens,
            access_keys=self.access_keys,
            iam_users=self.iam_users,
            iam_projects=dict(self.iam_projects) or config.iam_projects,
        )

    def describe(self) -> str:
        return "; ".join(self.accepted) if self.accepted else "any non-empty X-Auth-Token"


def simulator_auth_from_env(
    env: Mapping[str, str],
    read_file: Callable[[str], str | None] = lambda _path: None,
    *,
    projects: Mapping[str, str] | None = None,
) -> SimulatorAuth:
    """The credentials the simulator accepts, from the client's variables; UsageError if a group is half-set.

    `projects` (project name, i.e. region, -> project id) is what the simulated IAM may scope tokens to;
    pass the plan's `{region: project_id}` when IAM users are accepted.
    """
    key = _key_pair(env, read_file)
    token = _token(env)
    user = _user(env)
    accepted = [found.describe() for found in (key, token, user) if found is not None]
    if key is None and token is None and user is None:
        return SimulatorAuth(iam_projects=dict(projects or {}))
    keys = () if key is None else (AccessKey(key.ak, key.sk, key.security_token),)
    users = () if user is None else (IamUser(user.username, user.password, user.domain_name),)
    if keys and (token or users):
        mode = "both"
    elif keys:
        mode = "aksk"
    else:
        mode = "token"
    return SimulatorAuth(
        auth_mode=mode,
        tokens=frozenset({token.token}) if token else frozenset(),  # IAM users' tokens are tracked as issued
        access_keys=keys,
        iam_users=users,
        iam_projects=dict(projects or {}),
        accepted=tuple(accepted),
    )


def _key_pair(env: Mapping[str, str], read_file: Callable[[str], str | None]) -> AkSkCredentials | None:
    """The key pair the client would sign with, from the environment or the credentials file, if any."""
    # discover_credentials raises when it finds nothing at all; a stand-in token makes "no key pair" a value.
    probe = {name: env[name] for name in _AKSK_VARIABLES if name in env} | {ENV_AUTH_TOKEN: _NONE_FOUND}
    found = discover_credentials(probe, read_file)
    return found if isinstance(found, AkSkCredentials) else None


def _token(env: Mapping[str, str]) -> TokenCredentials | None:
    if not _is_set(env, ENV_AUTH_TOKEN):
        return None
    found = discover_credentials({ENV_AUTH_TOKEN: env[ENV_AUTH_TOKEN]}, lambda _path: None)
    assert isinstance(found, TokenCredentials)
    return found


def _user(env: Mapping[str, str]) -> PasswordCredentials | None:
    """The IAM user if any of its three variables is set (a half-set group raises, as for the client)."""
    if not any(_is_set(env, name) for name in _PASSWORD_VARIABLES):
        return None
    found = discover_credentials({name: env[name] for name in _PASSWORD_VARIABLES if name in env})
    assert isinstance(found, PasswordCredentials)
    return found


def _is_set(env: Mapping[str, str], name: str) -> bool:
    # As in orchestrator.credentials: blank counts as unset, except that a password is taken verbatim.
    value = env.get(name, "")
    return bool(value if name == ENV_PASSWORD else value.strip())
