"""The simulator's IAM: `POST /v3/auth/tokens` with an IAM user's password (contract §7), and its tokens.

In the real cloud IAM is another host (`iam.{region}.myhuaweicloud.com`); the simulator serves this one path
on its own port so that a single URL serves a client's login and its API calls. Pure apart from the
registry of issued tokens: the wall-clock time is always passed in.

What is documented [DOC §7]: the password body, 201 Created, the token in the `X-Subject-Token` header, a body
`{"token": {expires_at, issued_at, methods, project, roles, user, catalog}}` (the SDK model `TokenResult`),
24 h lifetime, `?nocatalog=true` leaves the catalog out. What is ours [INF]: the error answers (Keystone
shape, see `IamError`), the role list, the ids (hashes of the names) and that only project scopes are issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from .config import IamUser, SimulatorConfig
from .errors import IamError

TOKEN_PATH: Final = "/v3/auth/tokens"  # noqa: S105 - a path, not a secret
SUBJECT_TOKEN_HEADER: Final = "X-Subject-Token"  # noqa: S105 - a header name
# "2026-12-03T12:00:00.000000Z" [DOC §7 examples]
TOKEN_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"  # noqa: S105 - a date format
ROLE_NAME: Final = "te_admin"  # [INF] a role name seen in Huawei token examples; nothing checks roles here


def new_token() -> str:
    """An opaque token like IAM's: "MII" and then about 1 KB of base64 (real ones are a PKCS#7 blob) [§7]."""
    return "MII" + base64.b64encode(secrets.token_bytes(768)).decode()


def _id(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def format_token_time(moment: datetime) -> str:
    return moment.strftime(TOKEN_TIME_FORMAT)


@dataclass(frozen=True, slots=True, repr=False)
class IssuedToken:
    """A token the simulated IAM issued: valid for one project until `expires_at`."""

    token: str
    user: IamUser
    project_id: str
    project_name: str
    issued_at: datetime
    expires_at: datetime

    def __repr__(self) -> str:
        return (
            f"IssuedToken(token='{self.token[:6]}…', user={self.user.name!r}, project={self.project_name!r}, "
            f"expires_at={format_token_time(self.expires_at)!r})"
        )


@dataclass(frozen=True, slots=True)
class PasswordLogin:
    """What a password login asks for, read from its body."""

    name: str
    password: str
    domain: str
    project_name: str | None
    project_id: str | None


def _bad_body(detail: str) -> IamError:
    return IamError(400, f"The request body is invalid: {detail}.")


def _text(container: Any, key: str, where: str) -> str:
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, str) or not value:
        raise _bad_body(f"{where}.{key} must be a non-empty string")
    return value


def _object(container: Any, key: str, where: str) -> Any:
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, dict):
        raise _bad_body(f"{where}.{key} must be an object")
    return value


def parse_password_login(body: bytes) -> PasswordLogin:
    """The user and scope of a §7 password body; `IamError` 400 if it is not one [shape DOC, answer INF]."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _bad_body("not JSON") from None
    auth = _object(data, "auth", "")
    identity = _object(auth, "identity", "auth")
    if identity.get("methods") != ["password"]:
        raise _bad_body('auth.identity.methods must be ["password"] (MFA is not simulated)')
    user = _object(_object(identity, "password", "auth.identity"), "user", "auth.identity.password")
    where = "auth.identity.password.user"
    domain = _text(_object(user, "domain", where), "name", f"{where}.domain")
    scope = auth.get("scope")
    project = scope.get("project") if isinstance(scope, dict) else None
    if not isinstance(project, dict) or not ({"name", "id"} & project.keys()):
        raise _bad_body("auth.scope.project with a name or an id is required (the simulator issues project tokens)")
    return PasswordLogin(
        name=_text(user, "name", where),
        password=_text(user, "password", where),
        domain=domain,
        project_name=_text(project, "name", "auth.scope.project") if "name" in project else None,
        project_id=_text(project, "id", "auth.scope.project") if "id" in project else None,
    )


def wrong_credentials() -> IamError:
    return IamError(401, "The username or password is wrong.")  # [INF] wording


class TokenIssuer:
    """Checks password logins against the configured users and remembers the tokens it issued."""

    def __init__(self, make_token: Callable[[], str] = new_token) -> None:
        self._make_token = make_token
        self._issued: dict[str, IssuedToken] = {}

    @property
    def issued(self) -> Mapping[str, IssuedToken]:
        """Every token issued so far, by its value (a read-only view)."""
        return MappingProxyType(self._issued)

    def issue(self, config: SimulatorConfig, body: bytes, now: datetime) -> IssuedToken:
        """A new token for the login in `body`, or `IamError` (400 bad body, 401 wrong user or scope)."""
        login = parse_password_login(body)
        user = self._user(config.iam_users, login)
        name, project_id = self._project(config.iam_projects, login)
        issued = IssuedToken(
            token=self._make_token(),
            user=user,
            project_id=project_id,
            project_name=name,
            issued_at=now,
            expires_at=now + timedelta(seconds=config.token_lifetime),
        )
        self._issued[issued.token] = issued
        return issued

    @staticmethod
    def _user(users: tuple[IamUser, ...], login: PasswordLogin) -> IamUser:
        for user in users:
            same_password = hmac.compare_digest(user.password.encode(), login.password.encode())
            if user.name == login.name and user.domain == login.domain and same_password:
                return user
        raise wrong_credentials()

    @staticmethod
    def _project(projects: Mapping[str, str], login: PasswordLogin) -> tuple[str, str]:
        """(name, id) of the scoped project; 401 if unknown or if its name and id disagree [INF]."""
        if login.project_name is not None:
            project_id = projects.get(login.project_name)
            if project_id is not None and login.project_id in (None, project_id):
                return login.project_name, project_id
        else:
            for name, project_id in projects.items():
                if project_id == login.project_id:
                    return name, project_id
        raise IamError(401, "The project in auth.scope does not exist or does not match.")


def token_body(issued: IssuedToken, *, catalog: bool) -> dict[str, Any]:
    """The 201 body: the fields of the SDK's `TokenResult` for a project-scoped password token [§7]."""
    domain = {"id": _id("domain", issued.user.domain), "name": issued.user.domain}
    token: dict[str, Any] = {
        "expires_at": format_token_time(issued.expires_at),
        "issued_at": format_token_time(issued.issued_at),
        "methods": ["password"],
        "project": {"id": issued.project_id, "name": issued.project_name, "domain": domain},
        "roles": [{"id": _id("role", ROLE_NAME), "name": ROLE_NAME}],
        "user": {
            "id": _id("user", issued.user.domain, issued.user.name),
            "name": issued.user.name,
            "domain": domain,
            "password_expires_at": "",
        },
    }
    if catalog:
        token["catalog"] = []  # [INF] the simulator has no service catalog to show
    return {"token": token}
