"""Credentials through the real CLI: one exported set-up serves `orchestrator simulate` and `apply` alike,
the official SDK accepts `orchestrator simulate`, and no secret ever reaches an output (issue 3)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import huaweicloudsdkcore.auth.credentials as core_credentials
import huaweicloudsdkgaussdb.v3 as gaussdb
import pytest
from clitools import cli, cli_env

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"
INSTANCE = "d512257ecca04d96a0f3a9021018a385in07"
PROXY = "7bf4a8bbb4f4fb58233a242ee13603bpo01"
AK, SK = "CLIAKEXAMPLE00000001", "CLISKEXAMPLE0000000000000000000000000001"
PASSWORD = "pa55word-for-the-cli-test"
AKSK_ENV = {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}
PASSWORD_ENV = {"HUAWEICLOUD_USERNAME": "ops", "HUAWEICLOUD_PASSWORD": PASSWORD, "HUAWEICLOUD_DOMAIN_NAME": "acme"}
SECRETS = (SK, PASSWORD)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    plan = (ROOT / "plans" / "small.yaml").read_text()
    plan = plan.replace("base_delay: 500ms", "base_delay: 10ms").replace("poll_interval: 5s", "poll_interval: 50ms")
    (tmp_path / "small.yaml").write_text(plan)
    return tmp_path


def start_simulator(work: Path, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "simulate", "--fleet", "small.yaml", "--port", "0",
         "--job-duration", "0.05", *extra],
        cwd=work, env=cli_env(env, work), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    first, second = process.stdout.readline(), process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", first)
    assert match, first + (process.stderr.read() if process.stderr else "")
    return process, match.group(0), second


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    return out + err


@pytest.fixture
def aksk_simulator(work: Path) -> Iterator[str]:
    process, url, accepts = start_simulator(work, AKSK_ENV)
    assert "AK/SK" in accepts and SK not in accepts
    yield url
    assert SK not in stop(process)


def test_one_exported_aksk_setup_serves_both_sides(work: Path, aksk_simulator: str) -> None:
    """The same AK/SK variables make the simulator verify signatures and apply sign with them: exit 0."""
    result = cli(
        "apply",
        "small.yaml",
        "--no-gate",
        "--endpoint",
        aksk_simulator,
        "--report",
        "r.jsonl",
        "-v",
        cwd=work,
        env=AKSK_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert "AK/SK (AK CLIA…0001" in result.stderr
    everything = result.stdout + result.stderr + (work / "r.jsonl").read_text()
    assert SK not in everything


def test_wrong_secret_key_stops_at_once(work: Path, aksk_simulator: str) -> None:
    """A wrong SK is refused once (401 APIGW.0301) and the run stops with exit 2, the SK never printed."""
    wrong = {**AKSK_ENV, "HUAWEICLOUD_SDK_SK": "X" * 40}
    result = cli(
        "apply", "small.yaml", "--no-gate", "--endpoint", aksk_simulator, "--report", "r.jsonl", cwd=work, env=wrong
    )
    assert result.returncode == 2
    assert "authentication failed" in result.stderr and "APIGW.0301" in result.stderr
    assert "X" * 40 not in result.stdout + result.stderr + (work / "r.jsonl").read_text()


def test_validate_credentials_checks_without_changing(work: Path, aksk_simulator: str) -> None:
    """validate --credentials makes one read-only call and says whether the set-up works."""
    good = cli("validate", "small.yaml", "--credentials", "--endpoint", aksk_simulator, cwd=work, env=AKSK_ENV)
    assert good.returncode == 0, good.stderr
    assert "credentials work: AK/SK" in good.stdout
    bad = cli(
        "validate",
        "small.yaml",
        "--credentials",
        "--endpoint",
        aksk_simulator,
        cwd=work,
        env={**AKSK_ENV, "HUAWEICLOUD_SDK_SK": "Y" * 40},
    )
    assert bad.returncode == 2 and "credentials refused" in bad.stderr and "Y" * 40 not in bad.stderr


def test_half_set_credentials_are_a_usage_error(work: Path) -> None:
    """An AK without its SK is an exit-2 error naming the missing variable, before anything is sent."""
    result = cli(
        "apply", "small.yaml", "--no-gate", "--endpoint", "http://127.0.0.1:9", cwd=work, env={"HUAWEICLOUD_SDK_AK": AK}
    )
    assert result.returncode == 2 and "HUAWEICLOUD_SDK_SK" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_password_login_through_the_simulated_iam(work: Path) -> None:
    """An IAM user in the environment logs in at the simulator's IAM endpoint and applies the plan."""
    process, url, accepts = start_simulator(work, PASSWORD_ENV)
    try:
        assert "ops" in accepts and PASSWORD not in accepts
        result = cli(
            "apply",
            "small.yaml",
            "--no-gate",
            "--endpoint",
            url,
            "--iam-endpoint",
            url,
            "--report",
            "r.jsonl",
            cwd=work,
            env=PASSWORD_ENV,
        )
        assert result.returncode == 0, result.stderr
        report = (work / "r.jsonl").read_text()
        assert PASSWORD not in result.stdout + result.stderr + report
        assert "MII" not in report  # no issued token either
    finally:
        assert PASSWORD not in stop(process)


def test_the_plans_iam_endpoint_beats_the_environments(work: Path) -> None:
    """With `iam_endpoint` in the plan, the login goes there even though $HUAWEICLOUD_SDK_IAM_ENDPOINT names a
    dead address; the summary line says the run used an IAM password, and nothing prints the password."""
    process, url, _ = start_simulator(work, PASSWORD_ENV)
    try:
        plan = work / "small.yaml"
        plan.write_text(plan.read_text().replace("region: cn-north-4", f"region: cn-north-4\niam_endpoint: {url}"))
        env = {**PASSWORD_ENV, "HUAWEICLOUD_SDK_IAM_ENDPOINT": "http://127.0.0.1:9"}
        result = cli("apply", "small.yaml", "--no-gate", "--endpoint", url, "--report", "r.jsonl", cwd=work, env=env)
        assert result.returncode == 0, result.stderr
        (summary,) = result.stderr.strip().splitlines()
        assert summary.startswith("apply: 5 targets in ") and ", IAM password): " in summary
        assert PASSWORD not in result.stdout + result.stderr + (work / "r.jsonl").read_text()
    finally:
        stop(process)


def test_the_kind_of_credentials_is_said_without_asking(work: Path, aksk_simulator: str) -> None:
    """Without -v, preview and apply each name the kind of credentials they used (never the secret)."""
    preview = cli("preview", "small.yaml", "--endpoint", aksk_simulator, cwd=work, env=AKSK_ENV)
    assert preview.returncode == 0, preview.stderr
    assert "(read with AK/SK)" in preview.stdout
    applied = cli(
        "apply", "small.yaml", "--no-gate", "--endpoint", aksk_simulator, "--report", "r.jsonl", cwd=work, env=AKSK_ENV
    )
    assert applied.returncode == 0, applied.stderr
    assert ", AK/SK): " in applied.stderr
    assert SK not in preview.stdout + preview.stderr + applied.stdout + applied.stderr


def test_quiet_refused_credentials_print_one_line(work: Path, aksk_simulator: str) -> None:
    """With -q, a refused key is exactly one line on stderr, naming the failure and the kind of credentials."""
    wrong = {**AKSK_ENV, "HUAWEICLOUD_SDK_SK": "Z" * 40}
    result = cli(
        "apply", "small.yaml", "--no-gate", "-q", "--endpoint", aksk_simulator, "--report", "r.jsonl", cwd=work,
        env=wrong,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "authentication failed, run stopped: HTTP 401 APIGW.0301" in line and line.endswith("(AK/SK)")
    assert "Z" * 40 not in line


def test_the_official_sdk_accepts_orchestrator_simulate(work: Path, aksk_simulator: str) -> None:
    """GaussDBClient with AK/SK, pointed at `orchestrator simulate`, changes a proxy, lists proxies, reads the job."""
    credentials = core_credentials.BasicCredentials(AK, SK, PROJECT)
    client = gaussdb.GaussDBClient.new_builder().with_credentials(credentials).with_endpoint(aksk_simulator).build()
    change = gaussdb.UpdateProxySessionConsistenceRequest(
        instance_id=INSTANCE,
        proxy_id=PROXY,
        body=gaussdb.ModifyProxyConsistRequest(session_consistence="false", consistence_mode="global"),
    )
    job_id = client.update_proxy_session_consistence(change).job_id
    assert job_id
    listing = client.show_gauss_my_sql_proxy_list(
        gaussdb.ShowGaussMySqlProxyListRequest(instance_id=INSTANCE, offset=0, limit=100)
    )
    assert PROXY in [element.proxy.pool_id for element in listing.proxy_list]
    job = client.show_gauss_my_sql_job_info(gaussdb.ShowGaussMySqlJobInfoRequest(id=job_id)).job
    assert job.id == job_id and job.status in ("Running", "Completed")


def test_credentials_file_without_header_is_one_error_line(work: Path) -> None:
    """A credentials file with no [section] header is an exit-2 error naming the file and line, even with -vv:
    no traceback, no line of the file."""
    (work / ".huaweicloud").mkdir()
    (work / ".huaweicloud" / "credentials").write_text(f"sk = {SK}\nak = {AK}\n")
    result = cli("validate", "small.yaml", "--credentials", "-vv", "--endpoint", "http://127.0.0.1:9", cwd=work)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [
        "orchestrator: error: credentials file ~/.huaweicloud/credentials is not a valid INI file "
        "(line 1: a key before the first [section] header)"
    ]
    assert "Traceback" not in result.stderr
    assert SK not in result.stdout + result.stderr


def test_credentials_file_from_windows_works(work: Path, aksk_simulator: str) -> None:
    """A credentials file with a UTF-8 byte order mark and CRLF line endings gives working AK/SK credentials."""
    (work / ".huaweicloud").mkdir()
    text = f"\ufeff[basic]\r\nak = {AK}\r\nsk = {SK}\r\nproject_id = {PROJECT}\r\n"
    (work / ".huaweicloud" / "credentials").write_bytes(text.encode())
    result = cli("validate", "small.yaml", "--credentials", "--endpoint", aksk_simulator, cwd=work)
    assert result.returncode == 0, result.stderr
    assert "credentials work: AK/SK" in result.stdout
    assert SK not in result.stdout + result.stderr
