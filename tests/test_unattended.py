"""Safe unattended runs through the real CLI (issue 4): the gate, the window, the lock, the failure budget,
signals and resume, against a simulator whose state the test reads."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clitools import cli, report_lines, simulator_for, start_cli, targets_of

PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"
TOKEN_ENV = {"HUAWEICLOUD_AUTH_TOKEN": "MIIunattended-test-token"}


def write_plan(path: Path, count: int, *, rate: str = "200/s", extra: str = "", proxies_per_instance: int = 1) -> Path:
    lines = [
        "version: 1",
        "region: cn-north-4",
        f"project_id: {PROJECT}",
        f"limits: {{rate: {rate}, concurrency: 50}}",
        "retry: {attempts: 3, base_delay: 10ms, max_delay: 50ms, timeout: 5s}",
        "jobs: {poll_interval: 20ms, timeout: 1m, visibility_grace: 5s}",
        "defaults: {mode: global}",
        extra,
        "targets:",
    ]
    for n in range(count):
        instance = f"{n // proxies_per_instance:032x}in07"
        lines += [f"  - instance_id: {instance}", f"    proxy_id: {n:031x}po01"]
    path.write_text("\n".join(lines) + "\n")
    return path


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def puts(sim) -> int:  # type: ignore[no-untyped-def]
    return sim.call(lambda s: s.stats.count(route="put_consistency"))


def jobs_per_proxy(sim) -> dict[tuple[str, str, str], int]:  # type: ignore[no-untyped-def]
    return sim.call(lambda s: dict(s.stats.jobs_by_proxy))


# --- the preview gate -----------------------------------------------------------------------------------------


def test_apply_without_an_approved_preview_is_refused(tmp_path: Path) -> None:
    """apply with neither --approved nor --no-gate exits 4 with one line; nothing is sent or written."""
    plan = write_plan(tmp_path / "p.yaml", 3)
    with simulator_for(plan) as sim:
        result = cli("apply", "p.yaml", "--endpoint", sim.url, cwd=tmp_path, env=TOKEN_ENV)
        assert result.returncode == 4
        assert result.stderr.count("\n") == 1 and "--approved PREVIEW" in result.stderr
        assert sim.call(lambda s: s.stats.count()) == 0
    assert not (tmp_path / "reports").exists()


def test_preview_then_approved_apply(tmp_path: Path) -> None:
    """A fresh preview approves the run; apply records it and changes what the preview showed."""
    plan = write_plan(tmp_path / "p.yaml", 6)
    with simulator_for(plan, job_duration=0.01) as sim:
        preview = cli("preview", "p.yaml", "--endpoint", sim.url, cwd=tmp_path, env=TOKEN_ENV)
        assert preview.returncode == 0, preview.stderr
        assert puts(sim) == 0
        changes = json.loads((tmp_path / "p.preview.json").read_text())["counts"]["change"]
        result = cli(
            "apply",
            "p.yaml",
            "--endpoint",
            sim.url,
            "--approved",
            "p.preview.json",
            "--report",
            "r.jsonl",
            cwd=tmp_path,
            env=TOKEN_ENV,
        )
        assert result.returncode == 0, result.stderr
        assert puts(sim) == changes
    started = report_lines(tmp_path / "r.jsonl")[0]
    assert started["approved_preview"] == "p.preview.json"


def test_gate_refuses_a_changed_plan_an_expired_preview_and_another_endpoint(tmp_path: Path) -> None:
    """The gate says exactly why: the plan changed, the preview expired, or it was made for another endpoint."""
    plan = write_plan(tmp_path / "p.yaml", 2)
    with simulator_for(plan) as sim, simulator_for(plan) as other:
        assert cli("preview", "p.yaml", "--endpoint", sim.url, cwd=tmp_path, env=TOKEN_ENV).returncode == 0
        document = json.loads((tmp_path / "p.preview.json").read_text())

        wrong_endpoint = cli(
            "apply", "p.yaml", "--endpoint", other.url, "--approved", "p.preview.json", cwd=tmp_path, env=TOKEN_ENV
        )
        assert wrong_endpoint.returncode == 4 and "endpoint" in wrong_endpoint.stderr

        old = dict(document, created_at=iso(datetime.now(UTC) - timedelta(days=2)))
        (tmp_path / "old.json").write_text(json.dumps(old))
        expired = cli("apply", "p.yaml", "--endpoint", sim.url, "--approved", "old.json", cwd=tmp_path, env=TOKEN_ENV)
        assert expired.returncode == 4 and "expired" in expired.stderr

        (tmp_path / "garbage.json").write_text("garbage")
        garbage = cli(
            "apply", "p.yaml", "--endpoint", sim.url, "--approved", "garbage.json", cwd=tmp_path, env=TOKEN_ENV
        )
        assert garbage.returncode == 4

        plan.write_text(plan.read_text().replace("mode: global", "mode: session"))
        changed = cli(
            "apply", "p.yaml", "--endpoint", sim.url, "--approved", "p.preview.json", cwd=tmp_path, env=TOKEN_ENV
        )
        assert changed.returncode == 4 and "plan changed" in changed.stderr
        assert puts(sim) == 0 and puts(other) == 0


def test_drift_since_the_preview_skips_only_the_drifted_target(tmp_path: Path) -> None:
    """A proxy changed by someone else after the preview is reported drifted; the others are changed."""
    plan = write_plan(tmp_path / "p.yaml", 4)
    with simulator_for(plan, job_duration=0.0) as sim:
        assert cli("preview", "p.yaml", "--endpoint", sim.url, cwd=tmp_path, env=TOKEN_ENV).returncode == 0
        document = json.loads((tmp_path / "p.preview.json").read_text())
        victim = next(t for t in document["targets"] if t["action"] == "change")
        other_mode = next(m for m in ("session", "eventual") if m != victim["mode_before"])

        def meddle(s) -> None:  # type: ignore[no-untyped-def]
            s.fleet.proxy(victim["project_id"], victim["instance_id"], victim["proxy_id"]).consistence_mode = other_mode

        sim.call(meddle)
        result = cli(
            "apply",
            "p.yaml",
            "--endpoint",
            sim.url,
            "--approved",
            "p.preview.json",
            "--report",
            "r.jsonl",
            cwd=tmp_path,
            env=TOKEN_ENV,
        )
    assert result.returncode == 3
    by = {t["proxy_id"]: t for t in targets_of(tmp_path / "r.jsonl")}
    assert by[victim["proxy_id"]]["outcome"] == "drifted"
    assert victim["mode_before"] in by[victim["proxy_id"]]["note"] and other_mode in by[victim["proxy_id"]]["note"]
    others = [t for t in by.values() if t["proxy_id"] != victim["proxy_id"]]
    assert {t["outcome"] for t in others} <= {"submitted", "unchanged"}


# --- the change window -----------------------------------------------------------------------------------------


def test_window_not_open_starts_nothing(tmp_path: Path) -> None:
    """Before not_before, apply exits 5 with one line and sends nothing."""
    soon = datetime.now(UTC) + timedelta(hours=1)
    window = f"window: {{not_before: '{iso(soon)}', not_after: '{iso(soon + timedelta(hours=2))}'}}"
    plan = write_plan(tmp_path / "p.yaml", 2, extra=window)
    with simulator_for(plan) as sim:
        result = cli("apply", "p.yaml", "--endpoint", sim.url, "--no-gate", cwd=tmp_path, env=TOKEN_ENV)
        assert result.returncode == 5 and "opens at" in result.stderr
        assert sim.call(lambda s: s.stats.count()) == 0


def test_run_that_cannot_fit_is_refused_unless_partial(tmp_path: Path) -> None:
    """A run estimated longer than the window is refused (exit 5) unless --allow-partial."""
    now = datetime.now(UTC)
    window = (
        f"window: {{not_before: '{iso(now - timedelta(minutes=1))}', not_after: '{iso(now + timedelta(seconds=20))}'}}"
    )
    plan = write_plan(tmp_path / "p.yaml", 100, rate="2/s", extra=window)
    with simulator_for(plan) as sim:
        result = cli("apply", "p.yaml", "--endpoint", sim.url, "--no-gate", cwd=tmp_path, env=TOKEN_ENV)
        assert result.returncode == 5 and "cannot finish in the window" in result.stderr
        assert sim.call(lambda s: s.stats.count()) == 0


def test_window_closing_mid_run_stops_starting_and_says_how_to_resume(tmp_path: Path) -> None:
    """At the cutoff no new target starts: the rest is not_started, exit 5, run_finished names the resume."""
    now = datetime.now(UTC)
    window = (
        f"window: {{not_before: '{iso(now - timedelta(minutes=1))}', "
        f"not_after: '{iso(now + timedelta(seconds=6))}', cutoff: 3s}}"
    )
    plan = write_plan(tmp_path / "p.yaml", 60, rate="10/s", extra=window)
    with simulator_for(plan, job_duration=0.0) as sim:
        result = cli(
            "apply",
            "p.yaml",
            "--endpoint",
            sim.url,
            "--no-gate",
            "--allow-partial",
            "--report",
            "r.jsonl",
            cwd=tmp_path,
            env=TOKEN_ENV,
        )
    assert result.returncode == 5, result.stderr
    lines = report_lines(tmp_path / "r.jsonl")
    targets = [t for t in lines if t["event"] == "target"]
    assert len(targets) == 60 and any(t["outcome"] == "not_started" for t in targets)
    finished = lines[-1]
    assert finished["exit_code"] == 5 and "window" in finished["stop_reason"]
    assert finished["resume"].startswith("orchestrator apply p.yaml --resume r.jsonl")


# --- the lock ---------------------------------------------------------------------------------------------------


def test_overlapping_start_is_refused_and_a_killed_holder_never_blocks(tmp_path: Path) -> None:
    """A second run exits 7 naming the holder; after the holder is killed -9 the next run takes the lock over."""
    plan = write_plan(tmp_path / "p.yaml", 40, rate="10/s")
    with simulator_for(plan, job_duration=0.0) as sim:
        first = start_cli(
            "apply", "p.yaml", "--endpoint", sim.url, "--no-gate", "--report", "a.jsonl", cwd=tmp_path, env=TOKEN_ENV
        )
        try:
            deadline = time.monotonic() + 10
            while puts(sim) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            second = cli(
                "apply",
                "p.yaml",
                "--endpoint",
                sim.url,
                "--no-gate",
                "--report",
                "b.jsonl",
                cwd=tmp_path,
                env=TOKEN_ENV,
            )
            assert second.returncode == 7
            assert f"locked by pid {first.pid}" in second.stderr
        finally:
            first.kill()
            first.communicate()
        assert (tmp_path / "p.yaml.lock").exists()  # kill -9 leaves the file...
        third = cli(
            "apply",
            "p.yaml",
            "--endpoint",
            sim.url,
            "--no-gate",
            "--report",
            "c.jsonl",
            "-v",
            cwd=tmp_path,
            env=TOKEN_ENV,
        )
        assert third.returncode == 0, third.stderr
        assert "took over a stale lock" in third.stderr  # ...which never blocks the next run
    assert not (tmp_path / "p.yaml.lock").exists()
    assert not (tmp_path / "c.jsonl.lock").exists()


# --- signals and resume -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_cleanly_and_resume_finishes_exactly_once(tmp_path: Path, signum: int, code: int) -> None:
    """SIGTERM/SIGINT: every target gets a line, run_finished is written, the lock released; --resume then
    changes the rest, and every proxy was changed exactly once."""
    plan = write_plan(tmp_path / "p.yaml", 50, rate="20/s")
    with simulator_for(plan, job_duration=0.0) as sim:
        run = start_cli(
            "apply", "p.yaml", "--endpoint", sim.url, "--no-gate", "--report", "a.jsonl", cwd=tmp_path, env=TOKEN_ENV
        )
        deadline = time.monotonic() + 20
        while puts(sim) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        run.send_signal(signum)
        _, stderr = run.communicate(timeout=30)
        assert run.returncode == code, stderr
        assert "Traceback" not in stderr
        lines = report_lines(tmp_path / "a.jsonl")
        assert len([t for t in lines if t["event"] == "target"]) == 50
        assert lines[-1]["event"] == "run_finished" and lines[-1]["exit_code"] == code
        assert any(t.get("outcome") == "not_started" for t in lines)
        # Nothing that never reached the wire is reported unknown or failed.
        assert not [t for t in lines if t.get("outcome") in ("unknown", "failed") and t.get("wire_attempts") == 0]
        assert not (tmp_path / "p.yaml.lock").exists()

        resumed = cli(
            "apply",
            "p.yaml",
            "--endpoint",
            sim.url,
            "--no-gate",
            "--resume",
            "a.jsonl",
            "--report",
            "b.jsonl",
            cwd=tmp_path,
            env=TOKEN_ENV,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert report_lines(tmp_path / "b.jsonl")[0]["resumes"] == ["a.jsonl"]
        changed = jobs_per_proxy(sim)
        assert set(changed.values()) == {1}
        modes = sim.call(lambda s: s.fleet.modes())
        assert set(modes.values()) == {"global"}


def test_resume_refuses_a_report_of_another_plan(tmp_path: Path) -> None:
    """--resume with a report written for another version of the plan is a usage error (exit 2)."""
    plan = write_plan(tmp_path / "p.yaml", 3)
    with simulator_for(plan, job_duration=0.0) as sim:
        assert (
            cli(
                "apply",
                "p.yaml",
                "--endpoint",
                sim.url,
                "--no-gate",
                "--report",
                "a.jsonl",
                cwd=tmp_path,
                env=TOKEN_ENV,
            ).returncode
            == 0
        )
        plan.write_text(plan.read_text().replace("attempts: 3", "attempts: 4"))
        result = cli(
            "apply", "p.yaml", "--endpoint", sim.url, "--no-gate", "--resume", "a.jsonl", cwd=tmp_path, env=TOKEN_ENV
        )
    assert result.returncode == 2 and "another version" in result.stderr


def test_lock_file_is_gone_after_a_failed_run(tmp_path: Path) -> None:
    """Whatever the exit, no lock file is left behind (a run that fails every target included)."""
    write_plan(tmp_path / "p.yaml", 2)
    result = cli(
        "apply",
        "p.yaml",
        "--endpoint",
        "http://127.0.0.1:9",
        "--no-gate",
        "--report",
        "r.jsonl",
        cwd=tmp_path,
        env=TOKEN_ENV,
    )
    assert result.returncode == 3
    assert not any(name.endswith(".lock") for name in os.listdir(tmp_path))


def test_kill_9_at_random_moments_then_resume_changes_every_proxy_exactly_once(tmp_path: Path) -> None:
    """Several rounds of apply killed with SIGKILL at random moments, each resumed from the reports so far:
    in the end every proxy is at its goal, each changed by exactly one job, and every report line parses
    (but a torn last one, which resume ignores)."""
    import random

    rng = random.Random(20261203)
    plan = write_plan(tmp_path / "p.yaml", 60, rate="20/s", proxies_per_instance=2)
    with simulator_for(plan, job_duration=0.2) as sim:
        reports: list[str] = []
        for round_number in range(1, 6):
            report = f"r{round_number}.jsonl"
            resume = [arg for earlier in reports if (tmp_path / earlier).exists() for arg in ("--resume", earlier)]
            args = ("apply", "p.yaml", "--endpoint", sim.url, "--no-gate", "--report", report, *resume)
            if round_number < 5:
                run = start_cli(*args, cwd=tmp_path, env=TOKEN_ENV)
                time.sleep(rng.uniform(0.8, 2.5))
                run.kill()
                run.communicate()
            else:
                final = cli(*args, cwd=tmp_path, env=TOKEN_ENV)
                assert final.returncode == 0, final.stderr
            reports.append(report)
        changed = jobs_per_proxy(sim)
        time.sleep(0.3)  # without --wait the run does not wait for each instance's last job (0.2 s here)
        modes = sim.call(lambda s: s.fleet.modes())
    assert set(modes.values()) == {"global"}
    assert changed and set(changed.values()) == {1}, changed
    killed_work = sum(len(targets_of(tmp_path / name)) for name in reports[:-1] if (tmp_path / name).exists())
    assert killed_work > 0  # the killed rounds did change things before they died
    for name in reports:
        path = tmp_path / name
        if not path.exists():
            continue
        text = path.read_text()
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            if number == len(lines) and not text.endswith("\n"):
                continue  # the torn last line of a killed run
            json.loads(line)


def test_jobs_command_follows_recorded_jobs_to_their_end(tmp_path: Path) -> None:
    """`orchestrator jobs REPORT` polls the recorded jobs once (still running: job lines); with --wait it
    follows them to completed + verified, in a new report; a third call finds nothing left to follow."""
    write_plan(tmp_path / "p.yaml", 6, proxies_per_instance=1)
    with simulator_for(tmp_path / "p.yaml", job_duration=1.5) as sim:
        applied = cli(
            "apply", "p.yaml", "--endpoint", sim.url, "--no-gate", "--report", "a.jsonl", cwd=tmp_path, env=TOKEN_ENV
        )
        assert applied.returncode == 0, applied.stderr
        submitted = [t for t in targets_of(tmp_path / "a.jsonl") if t["outcome"] == "submitted"]
        assert submitted
        once = cli("jobs", "a.jsonl", "--endpoint", sim.url, "--report", "b.jsonl", cwd=tmp_path, env=TOKEN_ENV)
        assert once.returncode == 0, once.stderr
        running = [line for line in report_lines(tmp_path / "b.jsonl") if line["event"] == "job"]
        assert {line["job_status"] for line in running} <= {"Running", "Pending"} and running
        waited = cli(
            # No --endpoint: the jobs are followed where the run made them (its run_started endpoint).
            "jobs",
            "a.jsonl",
            "--wait",
            "--report",
            "c.jsonl",
            cwd=tmp_path,
            env=TOKEN_ENV,
        )
        assert waited.returncode == 0, waited.stderr
        final = targets_of(tmp_path / "c.jsonl")
        assert len(final) == len(submitted)
        assert {(t["outcome"], t["verified"]) for t in final} == {("completed", True)}
        assert report_lines(tmp_path / "c.jsonl")[0]["follows"] == ["a.jsonl"]
        again = cli("jobs", "a.jsonl", "c.jsonl", "--endpoint", sim.url, cwd=tmp_path, env=TOKEN_ENV)
        assert again.returncode == 0 and "nothing to follow" in again.stdout


# --- a stop that came too late to cut anything short ---------------------------------------------------------------


def _settled_result(*outcomes: str, **fields: object):  # type: ignore[no-untyped-def]
    from orchestrator.errors import ExitCode
    from orchestrator.report import Outcome, TargetOutcome
    from orchestrator.run import RunResult

    lines = [
        TargetOutcome(PROJECT, f"{n:032x}in07", f"{n:031x}po01", "session", "global", Outcome(o), None, 1, 1, None,
                      None, None, 0, None)
        for n, o in enumerate(outcomes)
    ]  # fmt: skip
    return RunResult(run_id="r", exit_code=ExitCode.OK, duration_s=0.0, outcomes=lines, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "stopped_code"),
    [
        ({"stop_kind": "window", "stop_reason": "the change window's cutoff was reached"}, 5),
        ({"stop_kind": "budget", "stop_reason": "failure budget spent"}, 6),
        ({"stop_kind": "signal", "stop_reason": "interrupted by SIGTERM", "signal": "SIGTERM"}, 143),
        ({"stop_kind": "signal", "stop_reason": "interrupted by SIGINT", "signal": "SIGINT"}, 130),
    ],
)
def test_a_stop_that_left_no_target_undone_does_not_change_the_exit_code(
    fields: dict[str, object], stopped_code: int
) -> None:
    """The window, the budget or a signal decide the exit code only if they left a target not_started (or a
    change cut short): once every target had settled, the run's own outcomes decide it (0, or 3 on failures)."""
    from orchestrator.run import exit_code_for

    assert exit_code_for(_settled_result("submitted", "submitted", **fields)) == 0
    assert exit_code_for(_settled_result("submitted", "failed", **fields)) == 3
    assert exit_code_for(_settled_result("submitted", "not_started", **fields)) == stopped_code
    assert exit_code_for(_settled_result("submitted", "submitted", cut_short=1, **fields)) == stopped_code


async def test_a_cutoff_reached_while_the_last_target_is_in_flight_exits_0_without_a_resume_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's cutoff passes while the plan's last PUT is on the wire; that PUT is answered after the
    cutoff and nothing is left not_started: exit 0, no stop reason, no resume hint (the cutoff is logged)."""
    import asyncio

    from fakes import make_plan

    from orchestrator import run as run_module
    from orchestrator.api import HttpApi
    from orchestrator.auth import StaticToken
    from orchestrator.connect import Connection
    from orchestrator.plan import Target, Window
    from orchestrator.simulator import Fleet, Simulator, SimulatorConfig

    token = "MIIcutoff-test-token"
    now = datetime.now(UTC)
    window = Window(now - timedelta(minutes=1), now + timedelta(seconds=61), cutoff=60.0)  # last start: now + 1s

    class LateAnswers(HttpApi):
        async def change_consistency(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            reply = await super().change_consistency(*args, **kwargs)
            # The answer arrives only after the cutoff, and after the cutoff has stopped the run.
            await asyncio.sleep(max(0.0, (window.last_start - datetime.now(UTC)).total_seconds()) + 0.1)
            return reply

    monkeypatch.setattr(run_module, "HttpApi", LateAnswers)
    fleet = Fleet()
    targets = []
    for n in range(3):
        fleet.add_proxy(PROJECT, f"{n:032x}in07", f"{n:031x}po01", "eventual")
        targets.append(Target(PROJECT, f"{n:032x}in07", f"{n:031x}po01", "global"))
    plan = make_plan(targets, window=window)
    options = run_module.RunOptions(
        command="apply", report_path=str(tmp_path / "r.jsonl"), resume_hint="orchestrator apply --resume r.jsonl"
    )
    async with Simulator(fleet, SimulatorConfig(tokens=frozenset({token}), job_duration=0.0)) as sim:
        result = await run_module.execute(plan, Connection(sim.url, StaticToken(token)), options)
    assert [o.outcome.value for o in result.latest] == ["submitted"] * 3
    assert result.late_stop is not None and "cutoff" in result.late_stop  # the cutoff did pass mid-run
    assert result.exit_code == 0 and result.stop_reason is None and result.stop_kind is None
    finished = report_lines(tmp_path / "r.jsonl")[-1]
    assert (finished["exit_code"], finished["stop_reason"], finished["resume"]) == (0, None, None)


async def test_a_budget_spent_by_the_last_target_exits_3_not_6(tmp_path: Path) -> None:
    """A failure budget spent by the plan's very last change stops nothing: exit 3 (a target failed), with
    neither a stop reason nor a resume hint."""
    from dataclasses import replace

    from fakes import make_plan

    from orchestrator.auth import StaticToken
    from orchestrator.connect import Connection
    from orchestrator.plan import JobSettings, Limits, Rate, StopSettings, Target
    from orchestrator.run import RunOptions, execute
    from orchestrator.simulator import Fleet, Simulator, SimulatorConfig

    token = "MIIbudget-test-token"
    fleet = Fleet()
    instance = f"{1:032x}in07"
    proxies = [f"{n:031x}po01" for n in range(3)]
    for proxy in proxies:
        fleet.add_proxy(PROJECT, instance, proxy, "eventual")
    plan = make_plan(
        [Target(PROJECT, instance, p, "global") for p in proxies],
        stop=StopSettings(1),
        limits=Limits(Rate(500, 1.0), 1, 1),
        jobs=replace(JobSettings(poll_interval=0.02, timeout=5.0, visibility_grace=2.0), wait=True),
    )
    config = SimulatorConfig(tokens=frozenset({token}), job_duration=0.05, fail_proxies=frozenset({proxies[-1]}))
    options = RunOptions(command="apply", report_path=str(tmp_path / "r.jsonl"), resume_hint="resume me")
    async with Simulator(fleet, config) as sim:
        result = await execute(plan, Connection(sim.url, StaticToken(token)), options)
    assert [o.outcome.value for o in result.latest] == ["completed", "completed", "job_failed"]
    assert result.late_stop is not None and "failure budget spent" in result.late_stop
    finished = report_lines(tmp_path / "r.jsonl")[-1]
    assert (finished["exit_code"], finished["stop_reason"], finished["resume"]) == (3, None, None)


async def test_a_signal_after_every_target_settled_exits_0(tmp_path: Path) -> None:
    """SIGTERM arriving once every target has settled interrupts nothing: exit 0, no stop reason, and
    `result.signal` stays None (a preview would then be written: it is complete)."""
    import asyncio

    from fakes import make_plan

    from orchestrator.auth import StaticToken
    from orchestrator.connect import Connection
    from orchestrator.engine import Engine
    from orchestrator.plan import Target
    from orchestrator.run import RunOptions, execute
    from orchestrator.simulator import Fleet, Simulator, SimulatorConfig

    token = "MIIsignal-test-token"
    fleet = Fleet()
    instance, proxy = f"{1:032x}in07", f"{1:031x}po01"
    fleet.add_proxy(PROJECT, instance, proxy, "eventual")
    plan = make_plan([Target(PROJECT, instance, proxy, "global")])

    async def run_then_signal(engine: Engine) -> None:
        await engine.run()
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the run's loop: the run is still in progress
        for _ in range(200):
            if engine.stopping:
                break
            await asyncio.sleep(0.01)
        assert engine.stopping

    options = RunOptions(
        command="apply", report_path=str(tmp_path / "r.jsonl"), handle_signals=True, work=run_then_signal
    )
    async with Simulator(fleet, SimulatorConfig(tokens=frozenset({token}), job_duration=0.0)) as sim:
        result = await execute(plan, Connection(sim.url, StaticToken(token)), options)
    assert [o.outcome.value for o in result.latest] == ["submitted"]
    assert result.late_stop == "interrupted by SIGTERM"
    assert (result.exit_code, result.signal, result.stop_reason) == (0, None, None)
    assert report_lines(tmp_path / "r.jsonl")[-1]["exit_code"] == 0
