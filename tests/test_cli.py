"""The command line end to end, through real subprocesses: exit codes, outputs, reports, no secrets."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from clitools import cli, cli_env, report_lines

ROOT = Path(__file__).resolve().parents[1]
PLANS = ROOT / "plans"
TOKEN = "MIIcli-test-token-0123456789abcdef"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> CompletedProcess[str]:
    return cli(*args, cwd=cwd, env=env, timeout=timeout)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for name in ("small.yaml", "all-proxies.yaml", "demo.yaml"):
        (tmp_path / name).write_bytes((PLANS / name).read_bytes())
    return tmp_path


def test_help_lists_exit_codes(work: Path) -> None:
    """--help on the program and on a command documents the exit codes and an example."""
    top = run("--help", cwd=work)
    sub = run("apply", "--help", cwd=work)
    assert top.returncode == 0 and "exit codes:" in top.stdout and "143" in top.stdout
    assert sub.returncode == 0 and "example:" in sub.stdout and "another run holds the lock" in sub.stdout


def test_version(work: Path) -> None:
    """--version prints the program's version."""
    result = run("--version", cwd=work)
    assert result.returncode == 0 and re.match(r"orchestrator \d", result.stdout)


def test_validate_accepts_the_example_plans(work: Path) -> None:
    """Every shipped example plan is valid."""
    for name in ("small.yaml", "all-proxies.yaml", "demo.yaml"):
        result = run("validate", name, cwd=work)
        assert result.returncode == 0, result.stderr
        assert "valid plan" in result.stdout


def test_invalid_plan_is_one_line_per_problem_exit_2(work: Path) -> None:
    """A broken plan gets one located line per problem, exit 2, and no traceback."""
    (work / "bad.yaml").write_text(
        "version: 1\nregion: cn-north-4\nproject_id: 619d3e78f61b4be68bc5aa0b59edcf7b\n"
        "limits:\n  concurency: 5\ntargets:\n  - instance_id: d512257ecca04d96a0f3a9021018a385in07\n"
        "    proxy_id: 7bf4a8bbb4f4fb58233a242ee13603bpo01\n    mode: on\n"
    )
    result = run("validate", "bad.yaml", cwd=work)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("orchestrator: error: bad.yaml:5:3: limits.concurency: unknown key")
    assert "did you mean 'concurrency'" in lines[0]
    assert lines[1].startswith("orchestrator: error: bad.yaml:9:11: targets[0].mode:") and "`on`" in lines[1]
    assert "Traceback" not in result.stderr
    quiet = run("apply", "bad.yaml", "--no-gate", "-q", cwd=work)  # for cron: one line, the first problem
    assert quiet.returncode == 2 and quiet.stdout == ""
    assert quiet.stderr.splitlines() == [lines[0] + " (and 1 more problem; run without -q to see all)"]


def test_apply_invalid_plan_writes_no_report_and_sends_nothing(work: Path) -> None:
    """apply on an invalid plan exits 2 before creating any report file."""
    (work / "bad.yaml").write_text("version: 1\nregion: cn-north-4\ntargets: []\n")
    result = run("apply", "bad.yaml", "--simulate", "--no-gate", cwd=work)
    assert result.returncode == 2 and "targets" in result.stderr
    assert not (work / "reports").exists()


def test_apply_without_credentials_is_a_usage_error(work: Path) -> None:
    """Against a real endpoint with no token set, apply stops with exit 2 and one line, writing nothing."""
    result = run("apply", "small.yaml", "--no-gate", cwd=work)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("orchestrator: error: no credentials found: set HUAWEICLOUD_SDK_AK")
    assert len(result.stderr.strip().splitlines()) == 1
    for variable in ("HUAWEICLOUD_AUTH_TOKEN", "HUAWEICLOUD_USERNAME", "~/.huaweicloud/credentials"):
        assert variable in result.stderr
    assert not (work / "reports").exists()


def test_plain_http_to_a_remote_host_is_refused(work: Path) -> None:
    """An http:// endpoint that is not loopback is refused before anything is sent."""
    result = run(
        "apply",
        "small.yaml",
        "--no-gate",
        "--endpoint",
        "http://example.com",
        cwd=work,
        env={"HUAWEICLOUD_AUTH_TOKEN": TOKEN},
    )
    assert result.returncode == 2 and "endpoint" in result.stderr and "https" in result.stderr
    assert TOKEN not in result.stderr + result.stdout


def test_demo_apply_on_the_simulator(work: Path) -> None:
    """The quickstart's run: every target of the demo plan is reported, with a job id for each change."""
    result = run("apply", "demo.yaml", "--simulate", "--no-gate", cwd=work)
    assert result.returncode == 0, result.stderr
    reports = list((work / "reports").glob("demo-*.jsonl"))
    assert len(reports) == 1
    lines = report_lines(reports[0])
    assert lines[0]["event"] == "run_started" and lines[-1]["event"] == "run_finished"
    targets = [line for line in lines if line["event"] == "target"]
    assert len(targets) == 300 == lines[0]["targets"]
    submitted = [t for t in targets if t["outcome"] == "submitted"]
    assert submitted and all(t["job_id"] for t in submitted)
    assert {t["outcome"] for t in targets} <= {"submitted", "unchanged"}
    finished = lines[-1]
    assert finished["exit_code"] == 0
    assert finished["counts"]["submitted"] == len(submitted)  # type: ignore[index]
    assert result.stdout == ""  # nothing on stdout but what was asked
    (summary,) = result.stderr.splitlines()  # not a terminal: one summary line, naming whose credentials
    assert summary.startswith("apply: 300 targets in ") and ", IAM token of the built-in simulator): " in summary


def test_report_to_stdout(work: Path) -> None:
    """--report - writes the JSON lines to stdout, nothing else."""
    result = run("apply", "small.yaml", "--simulate", "--no-gate", "--report", "-", cwd=work)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line)["event"] for line in result.stdout.splitlines()]
    assert events[0] == "run_started" and events[-1] == "run_finished" and events.count("target") == 5


def test_rerun_is_all_unchanged_and_appends(work: Path) -> None:
    """A second run on the same (seeded) simulator state appends a new run_id to the same report file."""
    first = run("apply", "small.yaml", "--simulate", "--no-gate", "--report", "r.jsonl", cwd=work)
    second = run("apply", "small.yaml", "--simulate", "--no-gate", "--report", "r.jsonl", cwd=work)
    assert first.returncode == second.returncode == 0
    lines = report_lines(work / "r.jsonl")
    assert len({line["run_id"] for line in lines}) == 2


def test_preview_sends_no_put_and_writes_the_preview_file(work: Path) -> None:
    """preview prints what would change and writes PLAN.preview.json with each target's observed mode."""
    result = run("preview", "all-proxies.yaml", "--simulate", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "to change" in result.stdout and " -> " in result.stdout
    document = json.loads((work / "all-proxies.preview.json").read_text())
    assert document["kind"] == "orchestrator-preview" and len(document["plan_digest"]) == 64
    actions = {t["action"] for t in document["targets"]}
    assert actions <= {"change", "unchanged"} and "change" in actions
    assert all(t["mode_before"] in ("session", "global", "eventual") for t in document["targets"])


@pytest.fixture
def simulator(work: Path) -> Iterator[str]:
    """An `orchestrator simulate` server process with one accepted token and some faults."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "simulate",
            "--fleet",
            "small.yaml",
            "--port",
            "0",
            "--job-duration",
            "0.05",
            "--error-500",
            "0.3",
            "--seed",
            "4",
            "-v",
        ],
        cwd=work,
        env=cli_env({"HUAWEICLOUD_AUTH_TOKEN": TOKEN}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert match, line
    yield match.group(0)
    process.send_signal(signal.SIGTERM)
    _, log = process.communicate(timeout=10)
    assert process.returncode == 0
    # -v: one line per request the simulator answered, and never the token.
    assert re.search(r"^GET list_jobs project=\w+ -> \d{3}", log, re.MULTILINE) and TOKEN not in log


def test_apply_against_a_separate_simulator_process(work: Path, simulator: str) -> None:
    """With a token from the environment and --endpoint, apply retries injected 500s and succeeds."""
    # Fast retries for this test: the plan's own 500ms base delay would only slow it down.
    plan = (work / "small.yaml").read_text().replace("base_delay: 500ms", "base_delay: 10ms")
    plan = plan.replace("poll_interval: 5s", "poll_interval: 50ms").replace("attempts: 5", "attempts: 10")
    (work / "fast.yaml").write_text(plan)
    result = run(
        "apply",
        "fast.yaml",
        "--no-gate",
        "--endpoint",
        simulator,
        "--report",
        "r.jsonl",
        "-v",
        cwd=work,
        env={"HUAWEICLOUD_AUTH_TOKEN": TOKEN},
    )
    assert result.returncode == 0, result.stderr
    lines = report_lines(work / "r.jsonl")
    assert lines[-1]["requests"]["retries"] > 0  # type: ignore[index]
    everything = result.stdout + result.stderr + (work / "r.jsonl").read_text()
    assert TOKEN not in everything
    assert "IAM token" in result.stderr  # -v says which kind of credentials it uses, not the token


def test_wrong_token_stops_the_run_with_exit_2(work: Path, simulator: str) -> None:
    """A token the gateway refuses (401 APIGW.0301, on the very first call) stops the run at once: exit 2
    since nothing was changed, every target not started with the reason in its note, the token never printed."""
    wrong = "MIIwrong-token-abcdefghijkl"
    result = run(
        "apply", "small.yaml", "--no-gate", "--endpoint", simulator, "--report", "r.jsonl",
        cwd=work, env={"HUAWEICLOUD_AUTH_TOKEN": wrong},
    )  # fmt: skip
    assert result.returncode == 2
    assert "authentication failed, run stopped: HTTP 401 APIGW.0301" in result.stderr
    lines = report_lines(work / "r.jsonl")
    targets = [line for line in lines if line["event"] == "target"]
    assert len(targets) == 5 and lines[-1]["exit_code"] == 2
    assert {t["outcome"] for t in targets} == {"not_started"}
    assert all("APIGW.0301" in t["note"] for t in targets)
    assert wrong not in result.stdout + result.stderr + (work / "r.jsonl").read_text()


def test_the_lock_owner_is_named_even_when_cron_sets_no_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without $USER and $LOGNAME (a bare cron environment) the lock names the uid's account, not a number."""
    import os
    import pwd

    from orchestrator.cli_run import user_name

    monkeypatch.delenv("USER", raising=False)
    monkeypatch.delenv("LOGNAME", raising=False)
    assert user_name() == pwd.getpwuid(os.getuid()).pw_name
    monkeypatch.setenv("LOGNAME", "ops-cron")
    assert user_name() == "ops-cron"


def test_simulate_on_a_port_in_use_is_a_usage_error_naming_it(work: Path) -> None:
    """`simulate --port P` with P taken: one line naming host and port, exit 2, not an internal error."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("simulate", "--fleet", "small.yaml", "--port", str(port), cwd=work, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"orchestrator: error: cannot listen on 127.0.0.1:{port}: address already in use"
    ]
    assert "internal error" not in result.stderr and result.stdout == ""
