"""The one exception tree of orchestrator, and the exit codes.

    OrchestratorError                 exit_code 1 unless a subclass says otherwise
    ├── UsageError                    2  bad command line, missing file, bad credentials set-up
    │   ├── PlanError                 2  the plan is invalid; carries every PlanIssue found
    │   └── AuthError                 2  credentials were refused (IAM login failed, a token or key refused)
    ├── GateRefused                   4  the preview gate refused the run        (issue 4)
    ├── WindowClosed                  5  the change window is closed / not open  (issue 4)
    ├── BudgetExhausted               6  the failure budget stopped the run      (issue 4)
    ├── LockHeld                      7  another run holds the lock              (issue 4)
    └── TransportError                -  one HTTP attempt failed below HTTP (never leaves the engine)

The CLI catches `OrchestratorError` once and prints `str(error)`: every message is one line per problem,
names its file:line:column or its target, and never contains a secret.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    FAILED_TARGETS = 3
    GATE_REFUSED = 4
    WINDOW_CLOSED = 5
    BUDGET_EXHAUSTED = 6
    LOCK_HELD = 7
    SIGINT = 130
    SIGTERM = 143


class OrchestratorError(Exception):
    """Base of every error orchestrator raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL


class UsageError(OrchestratorError):
    """The command line, a file named on it, or the environment is wrong; nothing was sent."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True, slots=True)
class PlanIssue:
    """One problem in a plan, located in its source file."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    field: str  # dotted path such as "targets[3].mode", or "" for the document itself
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class PlanError(UsageError):
    """The plan is invalid. `issues` lists every problem found, in file order."""

    def __init__(self, issues: Sequence[PlanIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class AuthError(UsageError):
    """The credentials were refused. The message names the kind of credentials, never a secret."""


class GateRefused(OrchestratorError):
    exit_code = ExitCode.GATE_REFUSED


class WindowClosed(OrchestratorError):
    exit_code = ExitCode.WINDOW_CLOSED


class BudgetExhausted(OrchestratorError):
    exit_code = ExitCode.BUDGET_EXHAUSTED


class LockHeld(OrchestratorError):
    exit_code = ExitCode.LOCK_HELD


class TransportError(OrchestratorError):
    """An attempt failed below HTTP: connect error, dropped connection, timeout, unreadable body.

    `sent` tells whether the request may have reached the server: a PUT that failed after it was sent has an
    unknown outcome (the change may have been applied), one that failed to connect did not happen.
    """

    def __init__(self, kind: str, detail: str, *, sent: bool, wire: int = 0) -> None:
        self.kind = kind  # "connect" | "timeout" | "dropped" | "protocol"
        self.detail = detail
        self.sent = sent
        self.wire = wire  # requests that left for the server during this call
        super().__init__(f"{kind}: {detail}")
