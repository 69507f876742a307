"""Transport: TLS verification is always on. There is no switch to turn it off (no --insecure yet), so a
certificate the system does not trust is refused, recorded as a connection failure, and nothing is changed."""

from __future__ import annotations

import asyncio
import random
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from fakes import PROJECT, instance_id, make_plan, proxy_id

from orchestrator.api import HttpApi
from orchestrator.auth import StaticToken
from orchestrator.engine import Engine
from orchestrator.governor import Governor
from orchestrator.plan import RetrySettings, Target
from orchestrator.report import Outcome, TargetOutcome

TOKEN = "MIItls-token-0123456789abcdef"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def self_signed_server(certificate: tuple[Path, Path]) -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTPS server on loopback with a self-signed certificate; yields its URL and the paths it was sent."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    seen: list[str] = []

    async def record(request: web.BaseRequest) -> web.Response:
        seen.append(request.path)
        return web.json_response({"proxy_list": []})

    runner = web.ServerRunner(web.Server(record))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"https://{host}:{port}", seen
    finally:
        await runner.cleanup()


async def test_a_certificate_the_system_does_not_trust_is_refused(self_signed_server: tuple[str, list[str]]) -> None:
    """Against a self-signed HTTPS endpoint every target fails (its first call, the running-jobs check, cannot
    connect: running_jobs_unknown) with transport.connect naming the certificate, and the server never receives
    a request (the token never leaves)."""
    url, seen = self_signed_server
    plan = make_plan(
        [Target(PROJECT, instance_id(1), proxy_id(1), "session")],
        retry=RetrySettings(attempts=2, base_delay=0.01, max_delay=0.02, timeout=5.0),
    )
    outcomes: list[TargetOutcome] = []
    governor = Governor(plan.limits.rate, plan.limits.concurrency)
    async with HttpApi(url, StaticToken(TOKEN), governor, timeout=plan.retry.timeout) as api:
        engine = Engine(api, plan, on_outcome=outcomes.append, rng=random.Random(1))
        await asyncio.wait_for(engine.run(), 60)
    (result,) = outcomes
    assert (result.outcome, result.error_code) == (Outcome.FAILED, "running_jobs_unknown")
    assert "transport.connect" in (result.error_msg or "") and "certificate" in (result.error_msg or "").lower()
    assert seen == []
