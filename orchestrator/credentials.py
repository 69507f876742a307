"""Which credentials to use, found in the environment and the SDK credentials file. Pure.

`discover_credentials(env, read_file)` takes the environment as a mapping and the file system as a reader
function, so tests hand it dicts; `read_text_file` is the real reader for the CLI. Precedence (first
complete set wins; a half-set one is an error, never skipped):

1. AK/SK: `HUAWEICLOUD_SDK_AK` + `HUAWEICLOUD_SDK_SK` (+ optional `HUAWEICLOUD_SDK_SECURITY_TOKEN`,
   `HUAWEICLOUD_SDK_PROJECT_ID`), else the SDK credentials file, section `[basic]`, keys `ak`, `sk`,
   `security_token`, `project_id` (path from `HUAWEICLOUD_SDK_CREDENTIALS_FILE`, default
   `~/.huaweicloud/credentials`; a default file without `[basic]` is passed over, a named one is an error;
   `project_id` is checked like a plan's);
2. an IAM token: `HUAWEICLOUD_AUTH_TOKEN`;
3. an IAM password: `HUAWEICLOUD_USERNAME` + `HUAWEICLOUD_PASSWORD` + `HUAWEICLOUD_DOMAIN_NAME`.

Secrets (SK, security token, IAM token, password) never appear in a repr, a `describe()` or an error
message; the AK is shown as its first and last four characters.
"""

from __future__ import annotations

import configparser
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from orchestrator.errors import UsageError
from orchestrator.plan import ID_ALLOWED, PROJECT_ID_RE

__all__ = [
    "DEFAULT_CREDENTIALS_FILE",
    "AkSkCredentials",
    "Credentials",
    "PasswordCredentials",
    "TokenCredentials",
    "discover_credentials",
    "iam_token_request_body",
    "read_text_file",
]

# Names of environment variables, not secrets (hence the S105 waivers).
ENV_AK: Final = "HUAWEICLOUD_SDK_AK"
ENV_SK: Final = "HUAWEICLOUD_SDK_SK"
ENV_SECURITY_TOKEN: Final = "HUAWEICLOUD_SDK_SECURITY_TOKEN"  # noqa: S105
ENV_PROJECT_ID: Final = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_CREDENTIALS_FILE: Final = "HUAWEICLOUD_SDK_CREDENTIALS_FILE"
ENV_AUTH_TOKEN: Final = "HUAWEICLOUD_AUTH_TOKEN"  # noqa: S105
ENV_USERNAME: Final = "HUAWEICLOUD_USERNAME"
ENV_PASSWORD: Final = "HUAWEICLOUD_PASSWORD"  # noqa: S105
ENV_DOMAIN_NAME: Final = "HUAWEICLOUD_DOMAIN_NAME"
DEFAULT_CREDENTIALS_FILE: Final = "~/.huaweicloud/credentials"
_FILE_SECTION: Final = "basic"

_HIDDEN: Final = "'***'"


def _mask(value: str) -> str:
    """First and last four characters of an identifier such as an AK; nothing of a short one."""
    return f"{value[:4]}…{value[-4:]}" if len(value) >= 12 else "…"


@dataclass(frozen=True, slots=True, repr=False)
class AkSkCredentials:
    """An access key pair; with `security_token` it is a temporary one (sent, signed, as X-Security-Token)."""

    kind: ClassVar[Literal["aksk"]] = "aksk"
    ak: str
    sk: str
    security_token: str | None = None
    project_id: str | None = None
    source: str = "environment"

    def describe(self) -> str:
        temporary = ", temporary with security token" if self.security_token else ""
        project = f", project {self.project_id}" if self.project_id else ""
        return f"AK/SK (AK {_mask(self.ak)} from {self.source}{temporary}{project})"

    def __repr__(self) -> str:
        token = _HIDDEN if self.security_token else "None"
        return (
            f"AkSkCredentials(ak='{_mask(self.ak)}', sk={_HIDDEN}, security_token={token}, "
            f"project_id={self.project_id!r}, source={self.source!r})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class TokenCredentials:
    """A ready IAM token (the X-Subject-Token of an IAM login), sent as X-Auth-Token."""

    kind: ClassVar[Literal["token"]] = "token"
    token: str
    source: str = "environment"

    def describe(self) -> str:
        return f"IAM token ({len(self.token)} characters, from {self.source})"

    def __repr__(self) -> str:
        return f"TokenCredentials(token={_HIDDEN}, source={self.source!r})"


@dataclass(frozen=True, slots=True, repr=False)
class PasswordCredentials:
    """An IAM user's password, exchanged for a token at IAM (contract §7)."""

    kind: ClassVar[Literal["password"]] = "password"
    username: str
    password: str
    domain_name: str
    source: str = "environment"

    def describe(self) -> str:
        return f"IAM password (user {self.username} of account {self.domain_name}, from {self.source})"

    def __repr__(self) -> str:
        return (
            f"PasswordCredentials(username={self.username!r}, password={_HIDDEN}, "
            f"domain_name={self.domain_name!r}, source={self.source!r})"
        )


Credentials = AkSkCredentials | TokenCredentials | PasswordCredentials


def discover_credentials(
    env: Mapping[str, str],
    read_file: Callable[[str], str | None] = lambda _path: None,
) -> Credentials:
    """The first complete set of credentials in precedence order; UsageError if one is half-set or none is."""
    found: Credentials | None = (
        _aksk_from_env(env) or _aksk_from_file(env, read_file) or _token_from_env(env) or _password_from_env(env)
    )
    if found is None:
        raise UsageError(
            f"no credentials found: set {ENV_AK} and {ENV_SK} (or write them to {DEFAULT_CREDENTIALS_FILE}), "
            f"or {ENV_AUTH_TOKEN}, or {ENV_USERNAME}, {ENV_PASSWORD} and {ENV_DOMAIN_NAME}"
        )
    return found


def _set(env: Mapping[str, str], name: str) -> str | None:
    # An exported-but-empty variable counts as unset, as `export X=` is how people clear one.
    value = env.get(name, "").strip()
    return value or None


def _complete(values: Mapping[str, str | None], where: str) -> dict[str, str] | None:
    """All the values if every name has one, None if none has, else UsageError naming the missing ones."""
    given = {name: value for name, value in values.items() if value is not None}
    if not given:
        return None
    missing = [name for name in values if name not in given]
    if missing:
        raise UsageError(f"incomplete credentials{where}: {_listing(list(given))} set but {_listing(missing)} not")
    return given


def _listing(names: list[str]) -> str:
    return f"{names[0]} is" if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]} are"


def _aksk_from_env(env: Mapping[str, str]) -> AkSkCredentials | None:
    keys = _complete({ENV_AK: _set(env, ENV_AK), ENV_SK: _set(env, ENV_SK)}, " in the environment")
    token = _set(env, ENV_SECURITY_TOKEN)
    if keys is None:
        if token is not None:
            raise UsageError(
                f"incomplete credentials in the environment: {ENV_SECURITY_TOKEN} is set "
                f"but {ENV_AK} and {ENV_SK} are not"
            )
        return None
    project_id = _checked_project_id(_set(env, ENV_PROJECT_ID), ENV_PROJECT_ID)
    return AkSkCredentials(keys[ENV_AK], keys[ENV_SK], token, project_id, source="environment")


def _aksk_from_file(env: Mapping[str, str], read_file: Callable[[str], str | None]) -> AkSkCredentials | None:
    explicit = _set(env, ENV_CREDENTIALS_FILE)
    path = explicit or DEFAULT_CREDENTIALS_FILE
    text = read_file(path)
    if text is None:
        if explicit:
            raise UsageError(f"{ENV_CREDENTIALS_FILE} names {path}, which does not exist or cannot be read")
        return None
    section = _parse_section(text, path)
    # The default file may serve other tools (other sections only): passed over. A file named on purpose must
    # serve us, and a [basic] section that is there but half-set is a mistake wherever the file is.
    if section is None:
        if explicit:
            raise UsageError(f"credentials file {path} has no [{_FILE_SECTION}] section, where ak and sk are read")
        return None
    where = f" in [{_FILE_SECTION}] of {path}"
    keys = _complete({"ak": section.get("ak"), "sk": section.get("sk")}, where)
    token = section.get("security_token")
    if keys is None:
        if token is not None:
            raise UsageError(f"incomplete credentials{where}: security_token is set but ak and sk are not")
        if explicit:
            raise UsageError(f"credentials file {path} has no ak and sk in its [{_FILE_SECTION}] section")
        return None
    project_id = _checked_project_id(section.get("project_id"), f"project_id{where}")
    return AkSkCredentials(keys["ak"], keys["sk"], token, project_id, source=path)


def _checked_project_id(project_id: str | None, where: str) -> str | None:
    if project_id is not None and not PROJECT_ID_RE.fullmatch(project_id):
        # Not echoed: a value pasted into the wrong line may be a secret.
        raise UsageError(
            f"invalid {where} (value not shown, {len(project_id)} characters); allowed: {ID_ALLOWED['project_id']}"
        )
    return project_id


# Why a file is not INI, said without quoting it: the parser's own messages quote the line, which may hold a
# secret. Subclasses first.
_INI_PROBLEMS: Final[tuple[tuple[type[configparser.Error], str], ...]] = (
    (configparser.MissingSectionHeaderError, "a key before the first [section] header"),
    (configparser.DuplicateSectionError, "a section given twice"),
    (configparser.DuplicateOptionError, "a key given twice in its section"),
    (configparser.ParsingError, "not a [section] header, a key = value line or a comment"),
)


def _parse_section(text: str, path: str) -> dict[str, str] | None:
    """The non-empty values of the `[basic]` section, trimmed; None if there is no such section."""
    # Read as the SDK reads it (a text-mode file: \n, \r\n and \r all end a line), and also past the byte
    # order mark an editor on Windows may put first, which the SDK would choke on. No interpolation: a '%' in
    # a secret key is just a character.
    lines = io.StringIO(text.removeprefix("\ufeff"), newline=None)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_file(lines, source=path)
        problem = None
    except configparser.Error as error:
        problem = _ini_problem(error)
    if problem is not None:
        # Raised outside the handler so that not even __context__ carries the parser's error and its quote.
        raise UsageError(f"credentials file {path} is not a valid INI file ({problem})") from None
    if not parser.has_section(_FILE_SECTION):
        return None
    return {key: value.strip() for key, value in parser.items(_FILE_SECTION) if value.strip()}


def _ini_problem(error: configparser.Error) -> str:
    """Where and what, from the error's attributes only (never its message)."""
    what = next((text for kind, text in _INI_PROBLEMS if isinstance(error, kind)), "unreadable")
    # MissingSectionHeaderError is a ParsingError without `errors` before Python 3.12; duplicates have `lineno`.
    line = getattr(error, "lineno", None)
    errors = getattr(error, "errors", None)
    if line is None and errors:
        line = errors[0][0]
    return f"line {line}: {what}" if isinstance(line, int) else what


def _token_from_env(env: Mapping[str, str]) -> TokenCredentials | None:
    token = _set(env, ENV_AUTH_TOKEN)
    return TokenCredentials(token, source=ENV_AUTH_TOKEN) if token else None


def _password_from_env(env: Mapping[str, str]) -> PasswordCredentials | None:
    # The password is taken verbatim: leading or trailing spaces may be part of it.
    values = {
        ENV_USERNAME: _set(env, ENV_USERNAME),
        ENV_PASSWORD: env.get(ENV_PASSWORD) or None,
        ENV_DOMAIN_NAME: _set(env, ENV_DOMAIN_NAME),
    }
    found = _complete(values, " in the environment")
    if found is None:
        return None
    return PasswordCredentials(found[ENV_USERNAME], found[ENV_PASSWORD], found[ENV_DOMAIN_NAME], source="environment")


def iam_token_request_body(
    creds: PasswordCredentials,
    project_name: str | None = None,
    project_id: str | None = None,
) -> dict[str, Any]:
    """The JSON body of `POST /v3/auth/tokens` (contract §7), scoped to one project by name or by id."""
    if (project_name is None) == (project_id is None):
        raise ValueError("give exactly one of project_name and project_id")
    project = {"name": project_name} if project_name is not None else {"id": project_id}
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "domain": {"name": creds.domain_name},
                        "name": creds.username,
                        "password": creds.password,
                    }
                },
            },
            "scope": {"project": project},
        }
    }


def read_text_file(path: str) -> str | None:
    """The real file reader for `discover_credentials`: the file's text, or None if it does not exist."""
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read credentials file {path}: {reason}") from None
