"""The operator's experience through the real CLI (issue 6): what a terminal shows, what cron sees, and a
fleet going from CSV to plan to preview to apply to report to rollback."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from clitools import cli, cli_env, simulator_for, targets_of

TOKEN_ENV = {"HUAWEICLOUD_AUTH_TOKEN": "MIIoperator-test-token"}
PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"


def write_csv(path: Path, count: int) -> Path:
    rows = ["Instance ID,proxy-id,Mode"]
    rows += [f"{n // 2:032x}in07,{n:031x}po01,{('session', 'global', 'eventual')[n % 3]}" for n in range(count)]
    path.write_text("\ufeff" + "\r\n".join(rows) + "\r\n")
    return path


def fast(plan: Path) -> None:
    text = plan.read_text()
    for old, new in (("base_delay: 500ms", "base_delay: 10ms"), ("poll_interval: 5s", "poll_interval: 20ms")):
        text = text.replace(old, new)
    plan.write_text(text)


def test_from_csv_to_rollback(tmp_path: Path) -> None:
    """CSV -> plan -> preview -> approved apply -> report (table, HTML, retry plan) -> rollback plan -> its
    preview: every step exits 0 and the rollback would put every changed proxy back."""
    write_csv(tmp_path / "fleet.csv", 12)
    made = cli("plan", "from-csv", "fleet.csv", "--region", "cn-north-4", "--project-id", PROJECT,
               "--out", "wave.yaml", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    fast(tmp_path / "wave.yaml")
    assert cli("validate", "wave.yaml", cwd=tmp_path).returncode == 0
    with simulator_for(tmp_path / "wave.yaml", job_duration=0.0) as sim:
        preview = cli("preview", "wave.yaml", "--endpoint", sim.url, cwd=tmp_path, env=TOKEN_ENV)
        assert preview.returncode == 0, preview.stderr
        applied = cli("apply", "wave.yaml", "--endpoint", sim.url, "--approved", "wave.preview.json",
                      "--report", "wave.jsonl", "--metrics-file", "wave.prom", cwd=tmp_path, env=TOKEN_ENV)  # fmt: skip
        assert applied.returncode == 0, applied.stderr
        changed = [t for t in targets_of(tmp_path / "wave.jsonl") if t["outcome"] == "submitted"]
        summary = cli("report", "wave.jsonl", "--html", "wave.html", cwd=tmp_path)
        assert summary.returncode == 0 and "ok: every target is done" in summary.stdout
        assert (tmp_path / "wave.html").read_text().startswith("<!DOCTYPE html>")
        as_json = json.loads(cli("report", "wave.jsonl", "--format", "json", cwd=tmp_path).stdout)
        assert as_json["total"] == 12
        rolled = cli("rollback", "wave.jsonl", "--plan", "wave.yaml", "--out", "back.yaml", cwd=tmp_path)
        assert rolled.returncode == 0, rolled.stderr
        time.sleep(0.05)
        back = cli("preview", "back.yaml", "--endpoint", sim.url, cwd=tmp_path, env=TOKEN_ENV)
        assert back.returncode == 0, back.stderr
        document = json.loads((tmp_path / "back.preview.json").read_text())
        assert document["counts"]["change"] == len(changed)
    metrics = (tmp_path / "wave.prom").read_text()
    assert "orchestrator_last_run_exit_code" in metrics and 'plan="' in metrics


def test_cron_output_is_quiet(tmp_path: Path) -> None:
    """Not on a terminal: nothing on stdout; on success one summary line on stderr, with -q nothing at all;
    on failure -q prints exactly one line."""
    write_csv(tmp_path / "fleet.csv", 4)
    cli("plan", "from-csv", "fleet.csv", "--region", "cn-north-4", "--project-id", PROJECT, "--out", "p.yaml",
        cwd=tmp_path)  # fmt: skip
    fast(tmp_path / "p.yaml")
    with simulator_for(tmp_path / "p.yaml", job_duration=0.0) as sim:
        plain = cli("apply", "p.yaml", "--endpoint", sim.url, "--no-gate", cwd=tmp_path, env=TOKEN_ENV)
        quiet = cli("apply", "p.yaml", "--endpoint", sim.url, "--no-gate", "-q", cwd=tmp_path, env=TOKEN_ENV)
    assert plain.returncode == quiet.returncode == 0
    assert plain.stdout == "" and len(plain.stderr.splitlines()) == 1 and plain.stderr.startswith("apply: 4 targets")
    assert quiet.stdout == "" and quiet.stderr == ""
    failing = cli("apply", "p.yaml", "--endpoint", "http://127.0.0.1:9", "--no-gate", "-q", cwd=tmp_path,
                  env=TOKEN_ENV)  # fmt: skip
    assert failing.returncode == 3 and failing.stdout == "" and len(failing.stderr.splitlines()) == 1


def test_json_logs(tmp_path: Path) -> None:
    """--log-format json with -v makes every stderr log line a JSON object."""
    write_csv(tmp_path / "fleet.csv", 2)
    cli("plan", "from-csv", "fleet.csv", "--region", "cn-north-4", "--project-id", PROJECT, "--out", "p.yaml",
        cwd=tmp_path)  # fmt: skip
    with simulator_for(tmp_path / "p.yaml", job_duration=0.0) as sim:
        result = cli("apply", "p.yaml", "--endpoint", sim.url, "--no-gate", "-v", "--log-format", "json",
                     cwd=tmp_path, env=TOKEN_ENV)  # fmt: skip
    assert result.returncode == 0, result.stderr
    logs = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert logs and all(json.loads(line)["event"] for line in logs)


def test_progress_line_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal, apply redraws one progress line (done/total, rate vs configured, ETA) in place."""
    write_csv(tmp_path / "fleet.csv", 30)
    cli("plan", "from-csv", "fleet.csv", "--region", "cn-north-4", "--project-id", PROJECT, "--out", "p.yaml",
        cwd=tmp_path)  # fmt: skip
    fast(tmp_path / "p.yaml")
    with simulator_for(tmp_path / "p.yaml", job_duration=0.0) as sim:
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "apply", "p.yaml", "--endpoint", sim.url, "--no-gate"],
            cwd=tmp_path, env=cli_env(TOKEN_ENV, tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=follower,
        )  # fmt: skip
        os.close(follower)
        screen = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        process.wait(30)
        os.close(leader)
    text = screen.decode(errors="replace")
    assert process.returncode == 0, text
    frames = [frame for frame in text.split("\r") if "targets" in frame and "/s of 10/s" in frame]
    assert len(frames) >= 3
    assert any("ETA" in frame for frame in frames)
    assert "apply: 30 targets" in text  # the summary after the progress line was cleared
