"""The run lock: exclusive across processes, stale and expired locks taken over with a note, no file left."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.errors import ExitCode, LockHeld
from orchestrator.lock import RunLock, hold_locks, lock_paths

T0 = 1_796_212_801.0  # 2026-12-02T12:00:01Z
HOST = socket.gethostname()

HOLDER = """
import sys
from orchestrator.lock import RunLock
lock = RunLock(sys.argv[1], lease=3600, owner="holder-test").acquire()
print("ready", flush=True)
sys.stdin.read()  # hold until the test closes stdin (or kills us)
lock.release()
"""
CONTENDER = """
import sys
from orchestrator.errors import LockHeld
from orchestrator.lock import RunLock
try:
    RunLock(sys.argv[1], lease=60, owner="contender").acquire()
except LockHeld as exc:
    print(exc)
    sys.exit(int(exc.exit_code))
print("acquired")
"""


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lock_file(tmp_path: Path) -> str:
    return str(tmp_path / "plan.yaml.lock")


@pytest.fixture
def holder(lock_file: str) -> Iterator[subprocess.Popen[str]]:
    """A subprocess holding the lock until its stdin closes."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, lock_file], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        yield process
        if process.poll() is None:
            process.kill()


def test_acquire_writes_who_holds_it_and_release_removes_the_file(lock_file: str) -> None:
    """The lock file names owner, host, pid, start and lease end while held, and is gone after release."""
    with RunLock(lock_file, lease=600, owner="nightly", clock=Clock()) as lock:
        info = json.loads(Path(lock_file).read_text())
        assert {k: info[k] for k in ("owner", "host", "pid", "started_at", "lease_until")} == {
            "owner": "nightly",
            "host": HOST,
            "pid": os.getpid(),
            "started_at": "2026-12-02T12:00:01Z",
            "lease_until": "2026-12-02T12:10:01Z",
        }
        assert lock.held and lock.took_over is None
    assert not os.path.exists(lock_file) and not lock.held


def test_the_file_is_removed_when_the_block_raises(lock_file: str) -> None:
    """An exception inside the with block still releases and removes the lock."""
    with pytest.raises(ZeroDivisionError), RunLock(lock_file, lease=60, owner="x"):
        1 / 0  # noqa: B018 - the point of the test
    assert not os.path.exists(lock_file)


def test_a_second_acquirer_is_refused_naming_the_holder(lock_file: str) -> None:
    """While one RunLock holds the file, another (same process, separate open) gets LockHeld in one line."""
    clock = Clock()
    with RunLock(lock_file, lease=600, owner="nightly", clock=clock):
        clock.now += 30
        with pytest.raises(LockHeld) as caught:
            RunLock(lock_file, lease=600, owner="other", clock=clock).acquire()
    assert str(caught.value) == (
        f"{lock_file} is locked by pid {os.getpid()} on host {HOST} since 2026-12-02T12:00:01Z (owner nightly); "
        "its lease runs until 2026-12-02T12:10:01Z"
    )
    assert caught.value.exit_code == ExitCode.LOCK_HELD


def test_a_second_acquirer_in_another_process_exits_7(lock_file: str) -> None:
    """A subprocess trying to take a lock this process holds fails with LockHeld naming this pid."""
    with RunLock(lock_file, lease=600, owner="parent"):
        result = subprocess.run(
            [sys.executable, "-c", CONTENDER, lock_file], capture_output=True, text=True, timeout=60, check=False
        )
    assert result.returncode == 7
    assert result.stdout.startswith(f"{lock_file} is locked by pid {os.getpid()} on host {HOST} since ")
    assert "(owner parent)" in result.stdout


def test_a_lock_held_by_another_process_is_refused(lock_file: str, holder: subprocess.Popen[str]) -> None:
    """This process cannot take a lock a live subprocess holds; the message names that process."""
    with pytest.raises(LockHeld, match=rf"is locked by pid {holder.pid} on host .* \(owner holder-test\)"):
        RunLock(lock_file, lease=60, owner="me").acquire()
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0
    assert not os.path.exists(lock_file)  # the holder released it and removed its file


def test_a_lock_left_by_a_killed_holder_is_taken_over_with_a_note(
    lock_file: str, holder: subprocess.Popen[str]
) -> None:
    """After kill -9 of the holder its file remains, but the next run takes it over and says whose it was."""
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert os.path.exists(lock_file)
    with RunLock(lock_file, lease=60, owner="next") as lock:
        assert lock.took_over is not None
        assert lock.took_over.startswith(f"took over a stale lock left by pid {holder.pid} on host {HOST} since ")
        assert lock.took_over.endswith("(owner holder-test)")
        assert json.loads(Path(lock_file).read_text())["owner"] == "next"
    assert not os.path.exists(lock_file)


def test_a_stale_file_with_garbage_is_taken_over(lock_file: str) -> None:
    """An unlocked lock file whose content cannot be read is taken over, saying so."""
    Path(lock_file).write_text('{"owner": "tor')
    with RunLock(lock_file, lease=60, owner="me") as lock:
        assert lock.took_over == "took over a stale lock file whose owner information is unreadable"


def test_an_empty_unlocked_file_is_simply_taken(lock_file: str) -> None:
    """An empty lock file (nobody wrote into it) is free: no takeover note."""
    Path(lock_file).touch()
    with RunLock(lock_file, lease=60, owner="me") as lock:
        assert lock.took_over is None


def test_a_lock_past_its_lease_is_taken_over_even_if_still_flocked(lock_file: str) -> None:
    """A holder alive but past its lease loses the lock: the file is replaced and the newcomer says so."""
    clock = Clock()
    old = RunLock(lock_file, lease=60, owner="hung", clock=clock).acquire()
    clock.now += 60
    new = RunLock(lock_file, lease=60, owner="next", clock=clock).acquire()
    assert new.took_over == (
        f"took over an expired lock of pid {os.getpid()} on host {HOST} since 2026-12-02T12:00:01Z (owner hung): "
        "its lease ended at 2026-12-02T12:01:01Z"
    )
    old.release()  # the old holder's release leaves the newcomer's file alone
    assert json.loads(Path(lock_file).read_text())["owner"] == "next"
    new.release()
    assert not os.path.exists(lock_file)


def test_renewing_extends_the_lease(lock_file: str) -> None:
    """A holder that renews before its lease ends keeps the lock past the original lease."""
    clock = Clock()
    with RunLock(lock_file, lease=60, owner="long", clock=clock) as lock:
        clock.now += 50
        lock.renew()
        assert json.loads(Path(lock_file).read_text())["lease_until"] == "2026-12-02T12:01:51Z"
        clock.now += 50  # 100 s after the start, within the renewed lease
        with pytest.raises(LockHeld, match="its lease runs until 2026-12-02T12:01:51Z"):
            RunLock(lock_file, lease=60, owner="other", clock=clock).acquire()


def test_a_holder_that_lost_its_lock_learns_it_when_renewing(lock_file: str) -> None:
    """renew() after a takeover raises LockHeld naming the new holder, so the old run can stop."""
    clock = Clock()
    old = RunLock(lock_file, lease=60, owner="hung", clock=clock).acquire()
    clock.now += 61
    with RunLock(lock_file, lease=60, owner="next", clock=clock):
        with pytest.raises(LockHeld, match=r"this run lost its lock: it was taken over by pid \d+ .*\(owner next\)"):
            old.renew()
        old.release()
        assert os.path.exists(lock_file)


def test_release_twice_is_harmless(lock_file: str) -> None:
    """A second release does nothing."""
    lock = RunLock(lock_file, lease=60, owner="me").acquire()
    lock.release()
    lock.release()
    assert not lock.held


def test_a_lock_is_not_acquired_twice_by_the_same_object(lock_file: str) -> None:
    """acquire() on a held RunLock is a programming error, not a self-deadlock."""
    with RunLock(lock_file, lease=60, owner="me") as lock, pytest.raises(RuntimeError, match="already held"):
        lock.acquire()


def test_a_lease_must_be_positive(lock_file: str) -> None:
    """A lease of 0 seconds is refused."""
    with pytest.raises(ValueError, match="lease must be above 0"):
        RunLock(lock_file, lease=0, owner="me")


# --- the set of locks of a run -----------------------------------------------------------------------------
def test_lock_paths_cover_plan_and_report_in_a_fixed_order(tmp_path: Path) -> None:
    """The plan's and the report's lock files, absolute and sorted; no report lock for stdout."""
    plan, report = tmp_path / "z-plan.yaml", tmp_path / "a-report.jsonl"
    assert lock_paths(plan, str(report)) == [f"{report}.lock", f"{plan}.lock"]
    assert lock_paths(plan, "-") == lock_paths(plan, None) == [f"{plan}.lock"]


def test_two_spellings_of_one_plan_share_one_lock(tmp_path: Path) -> None:
    """A symlink and a relative path to the same plan give the same lock file."""
    plan = tmp_path / "plan.yaml"
    plan.touch()
    (tmp_path / "link.yaml").symlink_to(plan)
    assert lock_paths(tmp_path / "link.yaml", None) == lock_paths(os.path.relpath(plan), None)


def test_hold_locks_releases_what_it_took_when_one_is_held(tmp_path: Path) -> None:
    """If the second lock is held, the first is released again and LockHeld propagates."""
    first, second = str(tmp_path / "a.lock"), str(tmp_path / "b.lock")
    with RunLock(second, lease=60, owner="other"):
        with pytest.raises(LockHeld), hold_locks([first, second], lease=60, owner="me"):
            pytest.fail("must not get here")
        assert not os.path.exists(first)


def test_hold_locks_holds_all_and_releases_all(tmp_path: Path) -> None:
    """Inside the block every lock is held; after it no lock file is left."""
    paths = [str(tmp_path / "a.lock"), str(tmp_path / "b.lock")]
    with hold_locks(paths, lease=60, owner="me") as locks:
        assert [lock.held for lock in locks] == [True, True]
        assert all(os.path.exists(p) for p in paths)
    assert not any(os.path.exists(p) for p in paths)
