"""Authenticators: AK/SK signing per attempt, static tokens, IAM tokens shared and refreshed exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from orchestrator.auth import AkSkSigner, IamPasswordAuth, IssuedToken, StaticToken
from orchestrator.credentials import AkSkCredentials, PasswordCredentials
from orchestrator.signing import verify_request

AK, SK = "FAKEAKEXAMPLE0000000", "FAKESKEXAMPLE00000000000000000000000000"
PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"
URL = f"https://gaussdb.cn-north-4.myhuaweicloud.com/v3/{PROJECT}/instances/x/proxies?limit=100&offset=0"
BASE = {"Content-Type": "application/json", "X-Project-Id": PROJECT}
T0 = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def test_aksk_signs_each_attempt_at_send_time() -> None:
    """Each authorize() signs with the clock's current time; a verifier with the same key accepts it."""
    clock = Clock()
    signer = AkSkSigner(AkSkCredentials(AK, SK), clock=clock)
    first = await signer.authorize("GET", URL, BASE, b"", PROJECT)
    clock.now += timedelta(seconds=30)
    second = await signer.authorize("GET", URL, {**BASE, "X-Sdk-Date": first["X-Sdk-Date"]}, b"", PROJECT)
    assert first["X-Sdk-Date"] == "20261203T120000Z" and second["X-Sdk-Date"] == "20261203T120030Z"
    path, query = URL.split("myhuaweicloud.com")[1].split("?")
    pairs = [tuple(p.split("=")) for p in query.split("&")]
    result = verify_request("GET", path, pairs, second, b"", secret_lookup={AK: SK}.get, now=clock.now)
    assert result.ok, result.reason


async def test_aksk_temporary_keys_sign_the_security_token() -> None:
    """Temporary keys send X-Security-Token and list it among the signed headers."""
    signer = AkSkSigner(AkSkCredentials(AK, SK, security_token="STS-token-value"), clock=Clock())
    headers = await signer.authorize("GET", URL, BASE, b"", PROJECT)
    assert headers["X-Security-Token"] == "STS-token-value"
    assert "x-security-token" in headers["Authorization"].split("SignedHeaders=")[1]


async def test_aksk_and_static_token_never_recover_from_401() -> None:
    """A refused signature or static token is never retried (a key locks after 5 failures)."""
    signer = AkSkSigner(AkSkCredentials(AK, SK))
    token = StaticToken("MIIstatic-token")
    assert not await signer.recover(401, "APIGW.0301", PROJECT, {})
    assert not await token.recover(401, "APIGW.0307", PROJECT, {})


def test_secrets_are_listed_but_never_shown() -> None:
    """secrets() lists the SK and tokens so output can be scrubbed; repr and describe never show them."""
    signer = AkSkSigner(AkSkCredentials(AK, SK, security_token="STS-token-value"))
    assert set(signer.secrets()) == {SK, "STS-token-value"}
    for text in (repr(signer), signer.describe()):
        assert SK not in text and "STS-token-value" not in text


class FakeIam:
    def __init__(self, clock: Clock, lifetime: timedelta = timedelta(hours=24)) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls: list[str] = []

    async def login(self, creds: PasswordCredentials, project_id: str) -> IssuedToken:
        self.calls.append(project_id)
        await asyncio.sleep(0.01)  # let concurrent callers pile up behind the first login
        now = self.clock()
        return IssuedToken(f"MIItoken-{len(self.calls)}", now + self.lifetime, now)


CREDS = PasswordCredentials("ops", "s3cret-password", "acme")


async def test_one_login_per_project_shared_by_concurrent_calls() -> None:
    """Fifty concurrent calls for one project cause exactly one IAM login; another project gets its own."""
    clock = Clock()
    iam = FakeIam(clock)
    auth = IamPasswordAuth(CREDS, iam.login, clock)
    headers = await asyncio.gather(*(auth.authorize("GET", URL, BASE, b"", PROJECT) for _ in range(50)))
    assert {h["X-Auth-Token"] for h in headers} == {"MIItoken-1"}
    await auth.authorize("GET", URL, BASE, b"", "b" * 32)
    assert iam.calls == [PROJECT, "b" * 32]


async def test_expired_token_401_refreshes_exactly_once_for_everybody() -> None:
    """Many calls refused with 401 APIGW.0307 for the same token share one refresh."""
    clock = Clock()
    iam = FakeIam(clock)
    auth = IamPasswordAuth(CREDS, iam.login, clock)
    sent = await auth.authorize("GET", URL, BASE, b"", PROJECT)
    recovered = await asyncio.gather(*(auth.recover(401, "APIGW.0307", PROJECT, sent) for _ in range(20)))
    assert all(recovered) and len(iam.calls) == 2
    fresh = await auth.authorize("GET", URL, BASE, b"", PROJECT)
    assert fresh["X-Auth-Token"] == "MIItoken-2"


async def test_other_401s_are_not_recovered() -> None:
    """A 401 that is not "token must be updated" (e.g. APIGW.0301) does not trigger a login."""
    clock = Clock()
    iam = FakeIam(clock)
    auth = IamPasswordAuth(CREDS, iam.login, clock)
    sent = await auth.authorize("GET", URL, BASE, b"", PROJECT)
    assert not await auth.recover(401, "APIGW.0301", PROJECT, sent)
    assert len(iam.calls) == 1


async def test_token_near_expiry_is_refreshed_before_use() -> None:
    """Within 5 minutes of expires_at the next call logs in again first."""
    clock = Clock()
    iam = FakeIam(clock)
    auth = IamPasswordAuth(CREDS, iam.login, clock)
    await auth.authorize("GET", URL, BASE, b"", PROJECT)
    clock.now += timedelta(hours=23, minutes=54)
    assert (await auth.authorize("GET", URL, BASE, b"", PROJECT))["X-Auth-Token"] == "MIItoken-1"
    clock.now += timedelta(minutes=2)  # now 4 minutes before expiry
    assert (await auth.authorize("GET", URL, BASE, b"", PROJECT))["X-Auth-Token"] == "MIItoken-2"


async def test_short_lived_tokens_use_a_tenth_of_their_life_as_margin() -> None:
    """A 10 s token is reused for 9 s, not refreshed on every call."""
    clock = Clock()
    iam = FakeIam(clock, lifetime=timedelta(seconds=10))
    auth = IamPasswordAuth(CREDS, iam.login, clock)
    for _ in range(5):
        await auth.authorize("GET", URL, BASE, b"", PROJECT)
        clock.now += timedelta(seconds=1)
    assert len(iam.calls) == 1
    clock.now += timedelta(seconds=5)
    await auth.authorize("GET", URL, BASE, b"", PROJECT)
    assert len(iam.calls) == 2


async def test_password_and_tokens_are_secrets() -> None:
    """The password and every issued token are listed for scrubbing, never shown by repr."""
    clock = Clock()
    auth = IamPasswordAuth(CREDS, FakeIam(clock).login, clock)
    await auth.authorize("GET", URL, BASE, b"", PROJECT)
    assert set(auth.secrets()) == {"s3cret-password", "MIItoken-1"}
    assert "s3cret" not in repr(auth) and "MIItoken" not in repr(auth)
