"""The run lock: one run per plan (and per report file) at a time. I/O at the edge, kept small.

A lock is a file `<plan>.lock` (and `<report>.lock`) that its holder keeps `flock`ed and in which it writes who
it is: {owner, host, pid, started_at, lease_until, token}. The kernel drops an flock when its process ends,
kill -9 included, so:

* flock taken at once, file empty: a free lock;
* flock taken at once, file holding someone's info: its holder died without cleaning up. We take it over
  (same file) and say so in `took_over`: "took over a stale lock left by pid … on host … since …";
* flock refused, lease still running: another run holds it: `LockHeld` (exit 7) naming pid, host, start and owner;
* flock refused, lease over: the holder is alive but hung (or forgot to `renew`). We take over by replacing
  the file (unlink, create, flock the new one) and say so in `took_over`. The old holder's flock stays on the
  unlinked file; its `release` sees the path is no longer its file and leaves ours alone, and its `renew`
  raises LockHeld so that it can stop. Choose `lease` longer than a run, or call `renew` every lease/3.

`release` unlinks the file only while the path is still the file we locked, then unlocks. After a kill -9 the
file stays, but its flock is gone: the next run takes it over (the first case above), never blocked.

Acquiring re-checks, after flock, that the path still names the locked file: a run that opened the file
just before its holder unlinked it would otherwise lock an orphan.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from .errors import LockHeld

_MAX_INFO_BYTES = 64 * 1024
_ATTEMPTS = 5  # the file changing under us this many times in a row means someone else keeps winning


@dataclass(frozen=True, slots=True)
class LockInfo:
    """What a holder writes into its lock file."""

    owner: str
    host: str
    pid: int
    started_at: str  # UTC, ISO 8601
    lease_until: str  # UTC, ISO 8601
    token: str  # unique per acquisition

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host} since {self.started_at} (owner {self.owner})"

    def lease_end(self) -> float | None:
        try:
            return datetime.fromisoformat(self.lease_until).timestamp()
        except ValueError:
            return None


class RunLock:
    """An exclusive, lease-bounded lock on `path`; a context manager. `clock` gives epoch seconds."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease: float,
        owner: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lease <= 0:
            raise ValueError("lease must be above 0 seconds")
        self.path = os.fspath(path)
        self.lease = lease
        self.owner = owner
        self._clock = clock
        self._fd: int | None = None
        self.info: LockInfo | None = None  # ours, while held
        self.took_over: str | None = None  # set when acquiring took over a stale or expired lock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise LockHeld (one line: who holds it). Sets `took_over` when it took over one."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: already held by this RunLock")
        for _ in range(_ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                if self._lock_or_replace(fd):
                    self._fd = fd
                    self._write_info(fd, started=self._clock())
                    return self
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the path changed under us (unlinked, replaced): try again with the new file
        raise LockHeld(f"{self.path}: could not take the lock: the lock file kept changing (another run starting?)")

    def _lock_or_replace(self, fd: int) -> bool:
        """flock `fd`; True when it is ours and the path still names it. Raise LockHeld for a live holder."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_info(fd)
            lease_end = holder.lease_end() if holder else None
            if holder is None or lease_end is None or lease_end > self._clock():
                raise LockHeld(self._held_message(holder)) from None
            if _names(self.path, fd):  # the holder's lease is over: replace its file with ours
                os.unlink(self.path)
                ended = holder.lease_until
                self.took_over = f"took over an expired lock of {holder.describe()}: its lease ended at {ended}"
            return False
        if not _names(self.path, fd):
            return False
        previous = os.pread(fd, 1, 0)
        if previous and self.took_over is None:  # someone locked and wrote it, and is gone (its flock with it)
            left = _read_info(fd)
            self.took_over = (
                f"took over a stale lock left by {left.describe()}"
                if left
                else "took over a stale lock file whose owner information is unreadable"
            )
        return True

    def _held_message(self, holder: LockInfo | None) -> str:
        if holder is None:
            return f"{self.path} is locked by another run (its owner information is not written yet or unreadable)"
        return f"{self.path} is locked by {holder.describe()}; its lease runs until {holder.lease_until}"

    def _write_info(self, fd: int, *, started: float) -> None:
        now = self._clock()
        self.info = LockInfo(
            owner=self.owner,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=_iso(started),
            lease_until=_iso(now + self.lease),
            token=self.info.token if self.info else uuid.uuid4().hex,
        )
        data = json.dumps(asdict(self.info)).encode() + b"\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)

    def renew(self) -> None:
        """Extend the lease to now + lease. Raise LockHeld if another run took the lock over meanwhile."""
        if self._fd is None or self.info is None:
            raise RuntimeError(f"{self.path}: renew() on a lock that is not held")
        if not _names(self.path, self._fd):
            holder = _read_path_info(self.path)
            by = f" by {holder.describe()}" if holder else ""
            raise LockHeld(f"{self.path}: this run lost its lock: it was taken over{by} after its lease ended")
        started = datetime.fromisoformat(self.info.started_at).timestamp()
        self._write_info(self._fd, started=started)

    def release(self) -> None:
        """Unlink the lock file if it is still ours, then unlock. Safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        self.info = None
        try:
            if _names(self.path, fd):
                os.unlink(self.path)
        finally:
            os.close(fd)  # drops the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunLock({self.path!r}, held={self.held}, owner={self.owner!r})"


def lock_paths(plan_path: str | os.PathLike[str], report_path: str | None) -> list[str]:
    """The lock files of a run: `<plan>.lock`, and `<report>.lock` unless the report is stdout ("-" or None).

    Paths are made absolute with symlinks resolved (two spellings of one plan share one lock), de-duplicated,
    and sorted: every run acquires them in the same order.
    """
    paths = {os.path.realpath(plan_path) + ".lock"}
    if report_path not in (None, "-"):
        assert report_path is not None
        paths.add(os.path.realpath(report_path) + ".lock")
    return sorted(paths)


@contextlib.contextmanager
def hold_locks(
    paths: Sequence[str], *, lease: float, owner: str, clock: Callable[[], float] = time.time
) -> Iterator[list[RunLock]]:
    """Acquire every lock of `paths` in order (releasing those taken if one is held), release all on exit.

    The yielded locks carry their `took_over` notes; `renew` each of them for long runs.
    """
    with contextlib.ExitStack() as stack:
        locks = []
        for path in paths:
            lock = RunLock(path, lease=lease, owner=owner, clock=clock)
            stack.enter_context(lock)
            locks.append(lock)
        yield locks


# --- helpers ------------------------------------------------------------------------------------------------
def _names(path: str, fd: int) -> bool:
    """Whether `path` currently names the open file `fd`."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def _read_info(fd: int) -> LockInfo | None:
    return _parse_info(os.pread(fd, _MAX_INFO_BYTES, 0))


def _read_path_info(path: str) -> LockInfo | None:
    try:
        with open(path, "rb") as file:
            return _parse_info(file.read(_MAX_INFO_BYTES))
    except OSError:
        return None


def _parse_info(data: bytes) -> LockInfo | None:
    try:
        fields = json.loads(data)
        return LockInfo(
            owner=str(fields["owner"]),
            host=str(fields["host"]),
            pid=int(fields["pid"]),
            started_at=str(fields["started_at"]),
            lease_until=str(fields["lease_until"]),
            token=str(fields.get("token", "")),
        )
    except (ValueError, TypeError, KeyError):
        return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
