"""What preview, apply and jobs print and write when things go wrong: one line with -q, no approvable preview
for a run that could not read the fleet, short logs for cron, and no secret in any file a server's words reach."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from clitools import cli, report_lines, simulator_for, start_cli

from orchestrator.simulator import Faults

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "MIIecho-secret-token-0123456789abcdefghij"
GOOD = "MIIgood-token-for-the-simulator-000000000000"


class EchoHandler(BaseHTTPRequestHandler):
    """A gateway that answers every request 400 and quotes the request's headers back in error_msg."""

    def do_GET(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def _answer(self) -> None:
        quoted = "; ".join(f"{name}={value}" for name, value in self.headers.items())
        body = json.dumps({"error_code": "DBS.280001", "error_msg": f"bad request: {quoted}"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for name in ("small.yaml", "demo.yaml"):
        plan = (ROOT / "plans" / name).read_text()
        (tmp_path / name).write_text(plan.replace("base_delay: 500ms", "base_delay: 10ms"))
    return tmp_path


def test_the_preview_file_holds_no_secret_a_server_quotes(work: Path, echo: str) -> None:
    """A gateway quoting the X-Auth-Token back in its error reaches the preview file (the one that goes round
    for approval) masked, as it reaches the terminal and the report."""
    result = cli(
        "preview", "small.yaml", "--endpoint", echo, "--out", "p.json", "--report", "r.jsonl", cwd=work,
        env={"HUAWEICLOUD_AUTH_TOKEN": TOKEN},
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    written = (work / "p.json").read_text()
    assert "bad request: " in written and "X-Auth-Token=***" in written  # the message is kept, the token is not
    everything = result.stdout + result.stderr + written + (work / "r.jsonl").read_text()
    assert TOKEN not in everything and TOKEN[8:24] not in everything


def test_a_quiet_preview_that_cannot_read_says_so_in_one_line(work: Path, echo: str) -> None:
    """preview -q prints nothing on success, and on failure exactly its count line, on stderr."""
    result = cli("preview", "small.yaml", "-q", "--endpoint", echo, cwd=work, env={"HUAWEICLOUD_AUTH_TOKEN": TOKEN})
    assert result.returncode == 3 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("preview: 0 to change") and "5 cannot be read (read with IAM token)" in line


def test_refused_credentials_leave_no_preview_to_approve(work: Path) -> None:
    """A preview whose credentials are refused says so in one line (exit 2) and writes no preview file, so
    that nothing can approve a run on a fleet it never read."""
    with simulator_for(work / "small.yaml", tokens=frozenset({GOOD})) as sim:
        for quiet in ((), ("-q",)):
            result = cli(
                "preview", "small.yaml", *quiet, "--endpoint", sim.url, "--out", "p.json", cwd=work,
                env={"HUAWEICLOUD_AUTH_TOKEN": TOKEN},
            )  # fmt: skip
            assert result.returncode == 2 and result.stdout == ""
            (line,) = result.stderr.strip().splitlines()
            assert line.startswith("orchestrator: error: authentication failed, run stopped: HTTP 401 APIGW.0301")
            assert line.endswith("(IAM token)") and TOKEN not in line
            assert not (work / "p.json").exists()
        assert sim.call(lambda s: s.stats.count()) == 2  # one refused request per run


def test_jobs_with_refused_credentials_says_why(work: Path) -> None:
    """`jobs` whose token is refused prints the same one error line as apply, naming the kind of credentials."""
    with simulator_for(work / "small.yaml", tokens=frozenset({GOOD})) as sim:
        applied = cli(
            "apply", "small.yaml", "--no-gate", "--endpoint", sim.url, "--report", "r.jsonl", cwd=work,
            env={"HUAWEICLOUD_AUTH_TOKEN": GOOD},
        )  # fmt: skip
        assert applied.returncode == 0, applied.stderr
        result = cli("jobs", "r.jsonl", "-q", "--report", "j.jsonl", cwd=work, env={"HUAWEICLOUD_AUTH_TOKEN": TOKEN})
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "authentication failed, run stopped: HTTP 401 APIGW.0301" in line and line.endswith("(IAM token)")


def test_a_log_gets_the_first_ten_failing_targets_and_a_pointer_to_the_rest(work: Path, echo: str) -> None:
    """Not on a terminal (cron), apply's end summary lists ten of its 300 failing targets and says where the
    rest are, instead of a 300-row table in the mail."""
    result = cli(
        "apply", "demo.yaml", "--no-gate", "--endpoint", echo, "--report", "r.jsonl", cwd=work,
        env={"HUAWEICLOUD_AUTH_TOKEN": TOKEN},
    )  # fmt: skip
    assert result.returncode in (3, 6), result.stderr
    failing = [t for t in report_lines(work / "r.jsonl") if t["event"] == "target" and t["outcome"] != "not_started"]
    lines = result.stderr.splitlines()
    listed = [line for line in lines if line.startswith("failed ") and "in07" in line]  # rows of the target table
    assert len(failing) > 10 and len(listed) == 10
    assert any(line.startswith("... and ") and line.endswith("more: orchestrator report r.jsonl") for line in lines)


def test_a_password_in_the_plans_endpoint_is_not_quoted_back(work: Path) -> None:
    """An endpoint with user:password@ is refused without printing the password, from the plan as from a flag."""
    plan = work / "small.yaml"
    plan.write_text(plan.read_text().replace("region: cn-north-4", "endpoint: https://ops:pw-S3CRET-9@example.com"))
    result = cli("validate", "small.yaml", cwd=work)
    assert result.returncode == 2 and "user:password@" in result.stderr
    assert "pw-S3CRET-9" not in result.stderr and "'https://***@example.com'" in result.stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_preview_writes_no_preview(work: Path, signum: int, code: int) -> None:
    """SIGTERM or SIGINT (Ctrl-C) in the middle of a preview: exit 143/130, one line saying so, and no preview
    file, whole or partial, so that no apply can be approved on a fleet half read."""
    with simulator_for(work / "demo.yaml", faults=Faults(latency=0.05)) as sim:
        run = start_cli(
            "preview", "demo.yaml", "-q", "--endpoint", sim.url, "--out", "p.json", cwd=work,
            env={"HUAWEICLOUD_AUTH_TOKEN": GOOD},
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while sim.call(lambda s: s.stats.count()) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        run.send_signal(signum)
        out, err = run.communicate(timeout=30)
    assert run.returncode == code and out == ""
    assert (
        err.strip().splitlines()[-1]
        == f"orchestrator: interrupted by {signal.Signals(signum).name}: no preview written"
    )
    assert not list(work.glob("p.json*"))


def test_a_report_that_cannot_be_written_stops_the_run_before_anything_is_sent(work: Path) -> None:
    """A --report that is a directory, or lies under a file, is a one-line usage error (exit 2), checked before
    the first request, and leaves nothing behind."""
    (work / "rep dir").mkdir()
    (work / "plain.txt").write_text("not a directory\n")
    with simulator_for(work / "small.yaml") as sim:
        not_a_directory = f"cannot be created: {work / 'plain.txt'} is not a directory"
        for report, problem in (("rep dir", "is a directory"), ("plain.txt/r.jsonl", not_a_directory)):
            for command in ("apply", "preview"):
                extra = ("--no-gate",) if command == "apply" else ()
                result = cli(
                    command, "small.yaml", *extra, "--endpoint", sim.url, "--report", report, cwd=work,
                    env={"HUAWEICLOUD_AUTH_TOKEN": GOOD},
                )  # fmt: skip
                assert result.returncode == 2, result.stderr
                assert result.stderr.splitlines() == [f"orchestrator: error: --report: {report} {problem}"]
        assert sim.call(lambda s: s.stats.count()) == 0
    assert sorted(p.name for p in work.iterdir()) == ["demo.yaml", "plain.txt", "rep dir", "small.yaml"]


def test_ctrl_c_while_the_modules_load_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A KeyboardInterrupt before cli.main's own handler is in place (the imports take a moment) is the same one
    line and exit 130, not a traceback."""
    import sys
    import types

    from orchestrator.__main__ import main

    def interrupted() -> int:
        raise KeyboardInterrupt

    loading = types.ModuleType("orchestrator.cli")
    loading.main = interrupted  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "orchestrator.cli", loading)
    assert main() == 130
    assert capsys.readouterr().err == "orchestrator: interrupted\n"


def test_the_suggested_command_is_quoted_for_the_shell(work: Path) -> None:
    """A plan under a directory with a space gets an approve command that a shell reads back as meant."""
    import shlex

    (work / "my plans").mkdir()
    (work / "my plans" / "wave 1.yaml").write_text((work / "small.yaml").read_text())
    result = cli("preview", "my plans/wave 1.yaml", "--simulate", cwd=work)
    assert result.returncode == 0, result.stderr
    suggested = result.stdout.strip().splitlines()[-1].split("approve it with: ", 1)[1]
    assert shlex.split(suggested) == [
        "orchestrator", "apply", "my plans/wave 1.yaml", "--approved", "my plans/wave 1.preview.json",
    ]  # fmt: skip


def test_a_report_on_a_full_disk_is_a_usage_error_before_anything_is_sent(work: Path) -> None:
    """/dev/full takes the open but not the first line: exit 2 in one line, no request sent."""
    with simulator_for(work / "small.yaml") as sim:
        result = cli(
            "apply", "small.yaml", "--no-gate", "--endpoint", sim.url, "--report", "/dev/full", cwd=work,
            env={"HUAWEICLOUD_AUTH_TOKEN": GOOD},
        )  # fmt: skip
        assert sim.call(lambda s: s.stats.count()) == 0
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "orchestrator: error: --report: cannot write the report /dev/full: No space left on device"
    ]
