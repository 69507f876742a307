"""Credential discovery: precedence, the SDK credentials file, half-set errors, secrets kept out of sight."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.credentials import (
    DEFAULT_CREDENTIALS_FILE,
    AkSkCredentials,
    Credentials,
    PasswordCredentials,
    TokenCredentials,
    discover_credentials,
    iam_token_request_body,
    read_text_file,
)
from orchestrator.errors import UsageError

AK = "FAKEAKEXAMPLE0000000"
SK = "FAKESKEXAMPLE00000000000000000000000000"
# Fake secrets, made to be searched for in messages.
TOKEN = "MIIsecret-token-value"
PASSWORD = "hunter2-secret"
AKSK_ENV = {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}
TOKEN_ENV = {"HUAWEICLOUD_AUTH_TOKEN": TOKEN}
PASSWORD_ENV = {
    "HUAWEICLOUD_USERNAME": "alice",
    "HUAWEICLOUD_PASSWORD": PASSWORD,
    "HUAWEICLOUD_DOMAIN_NAME": "acme",
}
PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"
FILE_AK = "FILEAKEXAMPLE1111111"
FILE_SK = "FILESK%with%percent1111111111111111111"
CREDENTIALS_FILE = f"""
[basic]
ak = {FILE_AK}
sk = {FILE_SK}
project_id = 619d3e78f61b4be68bc5aa0b59edcf7b

[global]
ak = ignored
sk = ignored
"""


def files(contents: dict[str, str]) -> Callable[[str], str | None]:
    """A file reader over a dict of path -> text."""
    return contents.get


def assert_no_secret(text: str) -> None:
    for secret in (SK, TOKEN, PASSWORD, FILE_SK):
        assert secret not in text


def usage_error(env: dict[str, str], read_file: Callable[[str], str | None] | None = None) -> str:
    with pytest.raises(UsageError) as info:
        discover_credentials(env, read_file or files({}))
    return str(info.value)


# ---------------------------------------------------------------- precedence


def test_aksk_from_environment() -> None:
    """AK and SK in the environment give AK/SK credentials, with the optional token and project id."""
    env = {**AKSK_ENV, "HUAWEICLOUD_SDK_SECURITY_TOKEN": TOKEN, "HUAWEICLOUD_SDK_PROJECT_ID": "0" * 32}
    creds = discover_credentials(env)
    assert creds == AkSkCredentials(AK, SK, TOKEN, "0" * 32, source="environment")
    assert creds.kind == "aksk"


def test_environment_project_id_is_checked_like_a_plans() -> None:
    """$HUAWEICLOUD_SDK_PROJECT_ID must be 32 letters or digits; the error names the variable, not its value."""
    message = usage_error({**AKSK_ENV, "HUAWEICLOUD_SDK_PROJECT_ID": "../../etc"})
    assert message == (
        "invalid HUAWEICLOUD_SDK_PROJECT_ID (value not shown, 9 characters); allowed: 32 letters or digits"
    )


def test_environment_aksk_beats_everything() -> None:
    """Environment AK/SK win over the credentials file, a token and a password."""
    env = {**AKSK_ENV, **TOKEN_ENV, **PASSWORD_ENV}
    creds = discover_credentials(env, files({DEFAULT_CREDENTIALS_FILE: CREDENTIALS_FILE}))
    assert isinstance(creds, AkSkCredentials)
    assert creds.ak == AK


def test_credentials_file_at_default_path() -> None:
    """Without AK/SK in the environment, the [basic] section of ~/.huaweicloud/credentials is used."""
    creds = discover_credentials(TOKEN_ENV, files({DEFAULT_CREDENTIALS_FILE: CREDENTIALS_FILE}))
    assert creds == AkSkCredentials(
        FILE_AK, FILE_SK, None, "619d3e78f61b4be68bc5aa0b59edcf7b", source=DEFAULT_CREDENTIALS_FILE
    )


def test_credentials_file_path_from_environment() -> None:
    """HUAWEICLOUD_SDK_CREDENTIALS_FILE names the file to read instead of the default."""
    env = {"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/etc/hw/creds"}
    read = files({"/etc/hw/creds": "[basic]\nak = A1\nsk = S1\nsecurity_token = T1\n"})
    assert discover_credentials(env, read) == AkSkCredentials("A1", "S1", "T1", None, source="/etc/hw/creds")


def test_token_beats_password() -> None:
    """An IAM token in the environment wins over an IAM password."""
    creds = discover_credentials({**TOKEN_ENV, **PASSWORD_ENV})
    assert creds == TokenCredentials(TOKEN, source="HUAWEICLOUD_AUTH_TOKEN")
    assert creds.kind == "token"


def test_password_last() -> None:
    """Username, password and account name give password credentials when nothing else is set."""
    creds = discover_credentials(PASSWORD_ENV)
    assert creds == PasswordCredentials("alice", PASSWORD, "acme")
    assert creds.kind == "password"


def test_password_is_taken_verbatim() -> None:
    """A password keeps its surrounding spaces, which may be part of it."""
    creds = discover_credentials({**PASSWORD_ENV, "HUAWEICLOUD_PASSWORD": " pw "})
    assert isinstance(creds, PasswordCredentials)
    assert creds.password == " pw "


def test_empty_variables_count_as_unset() -> None:
    """Variables exported empty are ignored, so a cleared AK does not hide a token."""
    env = {"HUAWEICLOUD_SDK_AK": "", "HUAWEICLOUD_SDK_SK": " ", **TOKEN_ENV}
    assert isinstance(discover_credentials(env), TokenCredentials)


def test_default_file_without_basic_section_is_skipped() -> None:
    """A default credentials file with no usable [basic] section is passed over."""
    read = files({DEFAULT_CREDENTIALS_FILE: "[global]\nak = a\nsk = s\n"})
    assert isinstance(discover_credentials(TOKEN_ENV, read), TokenCredentials)


def test_read_text_file(tmp_path: Path) -> None:
    """The real reader returns a file's text, and None for a file that does not exist."""
    path = tmp_path / "credentials"
    path.write_text(CREDENTIALS_FILE, encoding="utf-8")
    assert read_text_file(str(path)) == CREDENTIALS_FILE
    assert read_text_file(str(tmp_path / "absent")) is None
    assert read_text_file(str(path / "below-a-file")) is None


# ---------------------------------------------------------------- errors


def test_no_credentials_lists_the_three_options() -> None:
    """With nothing set, the error names the AK/SK, token and password variables on one line."""
    message = usage_error({})
    for name in [
        "HUAWEICLOUD_SDK_AK",
        "HUAWEICLOUD_AUTH_TOKEN",
        "HUAWEICLOUD_USERNAME",
        DEFAULT_CREDENTIALS_FILE,
    ]:
        assert name in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"HUAWEICLOUD_SDK_AK": AK}, "HUAWEICLOUD_SDK_SK is not"),
        ({"HUAWEICLOUD_SDK_SK": SK}, "HUAWEICLOUD_SDK_AK is not"),
        ({"HUAWEICLOUD_SDK_SECURITY_TOKEN": TOKEN}, "HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK are not"),
        (
            {"HUAWEICLOUD_USERNAME": "alice"},
            "HUAWEICLOUD_PASSWORD and HUAWEICLOUD_DOMAIN_NAME are not",
        ),
        (
            {"HUAWEICLOUD_PASSWORD": PASSWORD, "HUAWEICLOUD_DOMAIN_NAME": "acme"},
            "HUAWEICLOUD_PASSWORD and HUAWEICLOUD_DOMAIN_NAME are set but HUAWEICLOUD_USERNAME is not",
        ),
        ({**TOKEN_ENV, "HUAWEICLOUD_SDK_SK": SK}, "HUAWEICLOUD_SDK_AK is not"),
    ],
)
def test_half_set_credentials_name_the_missing_variable(env: dict[str, str], missing: str) -> None:
    """A half-set group is an error naming what is missing, even when a later group is complete."""
    message = usage_error(env)
    assert missing in message
    for secret in (SK, TOKEN, PASSWORD):
        assert secret not in message


def test_half_set_credentials_file() -> None:
    """A credentials file with an ak but no sk is an error naming the key and the file."""
    message = usage_error({}, files({DEFAULT_CREDENTIALS_FILE: f"[basic]\nak = {AK}\nsk =\n"}))
    assert message == f"incomplete credentials in [basic] of {DEFAULT_CREDENTIALS_FILE}: ak is set but sk is not"


def test_named_credentials_file_must_exist() -> None:
    """A credentials file named by HUAWEICLOUD_SDK_CREDENTIALS_FILE that cannot be read is an error."""
    message = usage_error({"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/nope", **TOKEN_ENV})
    assert "/nope" in message
    assert "does not exist" in message


def test_named_credentials_file_must_hold_keys() -> None:
    """A named credentials file without ak and sk in [basic] is an error, not silently skipped."""
    env = {"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/c", **TOKEN_ENV}
    message = usage_error(env, files({"/c": f"[basic]\nproject_id = {PROJECT}\n[global]\nak = a\n"}))
    assert message == "credentials file /c has no ak and sk in its [basic] section"


def test_named_credentials_file_must_have_a_basic_section() -> None:
    """A named credentials file whose only section is not [basic] is an error saying so, on one line."""
    env = {"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/c", **TOKEN_ENV}
    message = usage_error(env, files({"/c": f"[default]\nak = {AK}\nsk = {SK}\nsecurity_token = {TOKEN}\n"}))
    assert message == "credentials file /c has no [basic] section, where ak and sk are read"
    assert_no_secret(message)


@pytest.mark.parametrize("explicit", [False, True])
def test_security_token_alone_in_the_file_is_incomplete(explicit: bool) -> None:
    """A [basic] section with a security token but no ak and sk is a half-set error, even in the default file."""
    path = "/c" if explicit else DEFAULT_CREDENTIALS_FILE
    env = {"HUAWEICLOUD_SDK_CREDENTIALS_FILE": path} if explicit else {}
    message = usage_error({**env, **TOKEN_ENV}, files({path: f"[basic]\nsecurity_token = {TOKEN}\n"}))
    assert message == f"incomplete credentials in [basic] of {path}: security_token is set but ak and sk are not"
    assert_no_secret(message)


def test_default_file_with_an_empty_basic_section_is_skipped() -> None:
    """A default credentials file whose [basic] holds no key, or only a project id, is passed over."""
    for text in ("[basic]\n", f"[basic]\nproject_id = {PROJECT}\nak =\n"):
        assert isinstance(discover_credentials(TOKEN_ENV, files({DEFAULT_CREDENTIALS_FILE: text})), TokenCredentials)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"[basic]\nak = {AK}\n{SK}\n", "line 3: not a [section] header, a key = value line or a comment"),
        (f"sk = {SK}\nak = {AK}\n", "line 1: a key before the first [section] header"),
        (f"\n# keys\nsk = {SK}\n[basic]\n", "line 3: a key before the first [section] header"),
        (f"[basic]\nsk = {SK}\nsk = {SK}\n", "line 3: a key given twice in its section"),
        (f"[basic]\nsk = {SK}\n[basic]\nsecurity_token = {TOKEN}\n", "line 3: a section given twice"),
        (f"[basic]\r\nak = {AK}\r\n{SK}\r\n", "line 3: not a [section] header, a key = value line or a comment"),
    ],
    ids=["bare line", "no header", "no header after a comment", "key twice", "section twice", "bare line, CRLF"],
)
def test_malformed_credentials_file_hides_the_offending_line(text: str, problem: str) -> None:
    """An unparseable credentials file is a one-line UsageError giving the line number and the kind of mistake;
    neither the message nor the exception chain (what -vv would print) quotes the file."""
    with pytest.raises(UsageError) as info:
        discover_credentials(TOKEN_ENV, files({DEFAULT_CREDENTIALS_FILE: text}))
    assert str(info.value) == f"credentials file {DEFAULT_CREDENTIALS_FILE} is not a valid INI file ({problem})"
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    everything = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert_no_secret(everything)
    assert AK not in everything


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
@pytest.mark.parametrize("bom", ["\ufeff", ""])
def test_file_from_a_windows_editor_is_read(bom: str, newline: str) -> None:
    """A byte order mark is skipped and any line ending (CRLF, CR, LF) ends a line, as a text-mode read does."""
    text = bom + newline.join(["[basic]", f"ak = {AK}", f"sk = {SK}", f"project_id = {PROJECT}", ""])
    creds = discover_credentials({}, files({DEFAULT_CREDENTIALS_FILE: text}))
    assert creds == AkSkCredentials(AK, SK, None, PROJECT, source=DEFAULT_CREDENTIALS_FILE)


def test_real_file_with_bom_and_crlf_is_read(tmp_path: Path) -> None:
    """The real reader and the parser together accept a UTF-8 file with a BOM and CRLF line endings."""
    path = tmp_path / "credentials"
    path.write_bytes(f"\ufeff[basic]\r\nak = {AK}\r\nsk = {SK}\r\nsecurity_token = {TOKEN}\r\n".encode())
    creds = discover_credentials({"HUAWEICLOUD_SDK_CREDENTIALS_FILE": str(path)}, read_text_file)
    assert creds == AkSkCredentials(AK, SK, TOKEN, None, source=str(path))


@pytest.mark.parametrize(
    "project_id",
    [
        "../../etc",
        PROJECT[:-1],
        PROJECT + "0",
        PROJECT[:-1] + "/",
        PROJECT[:-1] + "\u00e9",
        f"{PROJECT[:16]} {PROJECT[16:]}",
    ],
)
def test_file_project_id_is_checked_like_a_plans(project_id: str) -> None:
    """A project_id in the file that is not 32 letters or digits is an error naming the file and the key, quoting
    no value from the file."""
    text = f"[basic]\nak = {AK}\nsk = {SK}\nsecurity_token = {TOKEN}\nproject_id = {project_id}\n"
    message = usage_error(TOKEN_ENV, files({DEFAULT_CREDENTIALS_FILE: text}))
    assert message.startswith(f"invalid project_id in [basic] of {DEFAULT_CREDENTIALS_FILE} (value not shown, ")
    assert message.endswith("allowed: 32 letters or digits")
    assert project_id.strip() not in message
    assert_no_secret(message)
    assert "\n" not in message


def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    """A credentials file that is not UTF-8 text gives a UsageError rather than a crash."""
    path = tmp_path / "credentials"
    path.write_bytes(b"\xff\xfe[basic]")
    with pytest.raises(UsageError, match="not UTF-8"):
        read_text_file(str(path))


# ---------------------------------------------------------------- secrets stay hidden

_secrets = st.text(min_size=1, max_size=30).map(lambda s: f"s3cr3t-{s}")


@given(sk=_secrets, token=_secrets, password=_secrets)
def test_secrets_never_in_repr_str_or_describe(sk: str, token: str, password: str) -> None:
    """No repr, str or describe() of any credentials shows a secret key, token or password."""
    values: list[Credentials] = [
        AkSkCredentials(AK, sk, token, "p1"),
        TokenCredentials(token),
        PasswordCredentials("alice", password, "acme"),
    ]
    for creds in values:
        for shown in (repr(creds), str(creds), creds.describe(), repr([creds])):
            assert sk not in shown
            assert token not in shown
            assert password not in shown


def test_describe_is_readable() -> None:
    """describe() says the kind, the masked AK or the user, and where the credentials came from."""
    assert discover_credentials(AKSK_ENV).describe() == "AK/SK (AK FAKE…0000 from environment)"
    temporary = AkSkCredentials(AK, SK, TOKEN, "p1", source="~/.huaweicloud/credentials")
    assert temporary.describe() == (
        "AK/SK (AK FAKE…0000 from ~/.huaweicloud/credentials, temporary with security token, project p1)"
    )
    assert TokenCredentials(TOKEN, source="HUAWEICLOUD_AUTH_TOKEN").describe() == (
        f"IAM token ({len(TOKEN)} characters, from HUAWEICLOUD_AUTH_TOKEN)"
    )
    assert PasswordCredentials("alice", PASSWORD, "acme").describe() == (
        "IAM password (user alice of account acme, from environment)"
    )


def test_repr_masks_the_access_key() -> None:
    """The repr shows the AK's ends only and marks the secrets as hidden."""
    shown = repr(AkSkCredentials(AK, SK, None, "p1"))
    assert shown == (
        "AkSkCredentials(ak='FAKE…0000', sk='***', security_token=None, project_id='p1', source='environment')"
    )


# ---------------------------------------------------------------- IAM password login


def test_iam_token_body_by_project_name() -> None:
    """The IAM login body has the contract's shape, scoped to a project by name."""
    body = iam_token_request_body(PasswordCredentials("alice", PASSWORD, "acme"), project_name="cn-north-4")
    assert body == {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"domain": {"name": "acme"}, "name": "alice", "password": PASSWORD}},
            },
            "scope": {"project": {"name": "cn-north-4"}},
        }
    }


def test_iam_token_body_by_project_id() -> None:
    """The IAM login body can scope the token to a project id instead."""
    body = iam_token_request_body(PasswordCredentials("alice", PASSWORD, "acme"), project_id="619d")
    assert body["auth"]["scope"] == {"project": {"id": "619d"}}


@pytest.mark.parametrize("scope", [{}, {"project_name": "a", "project_id": "b"}])
def test_iam_token_body_needs_exactly_one_scope(scope: dict[str, str]) -> None:
    """Giving neither or both of project name and id is a programming error."""
    with pytest.raises(ValueError, match="exactly one"):
        iam_token_request_body(PasswordCredentials("alice", PASSWORD, "acme"), **scope)
