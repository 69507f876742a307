"""Settling targets: each target's one outcome, handed on at once, and what the run remembers of it.

Every settled target is handed to `on_outcome` as soon as it settles (the report writes it before anything else
happens). The ledger remembers what the rest of the run asks about settled targets: which keys are settled (so
that a cancelled run settles all the others exactly once), which PUTs may be on the wire (a cancellation makes
them `unknown`, not `not_started`), each key's last outcome (the failure budget counts it), which outcomes the
stop decided (`Engine.cut_short`) and how many targets an earlier run had settled (resume: skipped, never
reported again).

A class of its own rather than a part of Engine: the engine, its lanes and the --wait verification all settle
targets, and they share this one record of what is settled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set

from .api import Reply
from .calls import CallResult
from .gate import Key
from .plan import Mode, Target
from .preview import Action, Step
from .report import Outcome, TargetOutcome

# Contract §1: "After the consistency level is changed, you need to manually reboot the proxy instance or
# reconnect your application."
EFFECT_NOTE = "takes effect once the proxy restarts or clients reconnect"

# (http_status, error_code, error_msg) for the report
Problem = tuple[int | None, str | None, str | None]


class Outcomes:
    def __init__(
        self, on_outcome: Callable[[TargetOutcome], None], *, clock: Callable[[], float], skip: Set[Key]
    ) -> None:
        self._on_outcome = on_outcome
        self._clock = clock
        self.skip = skip  # targets done in an earlier run (resume): not listed for, not sent, not reported
        self.skipped = 0  # targets skipped because an earlier run settled them
        self.settled: set[Key] = set()  # every key an outcome was emitted for
        self.put_in_flight: set[Key] = set()  # keys whose PUT may be on the wire right now
        self.last: dict[Key, Outcome] = {}
        self.cut_short: set[Key] = set()  # targets whose outcome the stop decided (not_started, cut short)

    def emit(
        self,
        step: Step,
        outcome: Outcome,
        started: float,
        *,
        attempts: int = 0,
        wire: int = 0,
        reply: Reply | None = None,
        job_id: str | None = None,
        error: Problem | None = None,
        note: str | None = None,
        verified: bool | None = None,
        cut_short: bool = False,
    ) -> None:
        """Hand one target's outcome to `on_outcome`. `cut_short`: the run's stop decided it (see cut_short)."""
        status, code, msg = error if error is not None else (reply.status if reply else None, None, None)
        if cut_short or outcome is Outcome.NOT_STARTED:
            self.cut_short.add(step.key)
        self.settled.add(step.key)
        self.put_in_flight.discard(step.key)
        self.last[step.key] = outcome
        self._on_outcome(
            TargetOutcome(
                project_id=step.project_id,
                instance_id=step.instance_id,
                proxy_id=step.proxy_id,
                mode_before=step.mode_before,
                mode_target=step.mode_target,
                outcome=outcome,
                job_id=job_id,
                attempts=attempts,
                wire_attempts=wire,
                http_status=status,
                error_code=code,
                error_msg=msg,
                elapsed_ms=round((self._clock() - started) * 1000),
                note=note,
                verified=verified,
            )
        )

    def settle_unlisted(
        self,
        targets: Sequence[Target],
        outcome: Outcome,
        started: float,
        *,
        call: CallResult | None = None,
        error: Problem | None = None,
        note: str | None = None,
    ) -> None:
        """Settle the targets of an instance whose proxies were not listed: nothing was sent for them (so the
        failure budget does not count them) and their mode before is unknown. Targets an earlier run settled
        (resume) stay settled: they are skipped, not reported again."""
        for target in targets:
            if target.key in self.skip:
                self.skipped += 1
            else:
                self._emit_plain(target, None, outcome, started, call=call, error=error, note=note)

    def settle_the_rest(
        self,
        groups: Mapping[tuple[str, str], list[Target]],
        resolved: Mapping[tuple[str, str], list[Step]],
        note: str,
    ) -> None:
        """After a cancellation: a PUT that was on the wire is `unknown`, anything else `not_started`.

        `resolved`: the steps of each instance that was listed (the others settle from the plan's targets).
        """
        now = self._clock()
        for key, targets in groups.items():
            steps = resolved.get(key)
            if steps is None:
                for target in targets:
                    if target.key not in self.settled and target.key not in self.skip:
                        self._emit_plain(target, None, Outcome.NOT_STARTED, now, note=note)
                continue
            for step in steps:
                if step.key in self.settled or step.key in self.skip:
                    continue
                if step.key in self.put_in_flight:
                    error = (None, "outcome_unknown", "the run was cancelled while this change was on the wire")
                    self.emit(step, Outcome.UNKNOWN, now, error=error, note=note, cut_short=True)
                else:
                    self.emit(step, Outcome.NOT_STARTED, now, note=note)

    def _emit_plain(
        self,
        target: Target,
        mode_before: Mode | None,
        outcome: Outcome,
        started: float,
        *,
        call: CallResult | None = None,
        error: Problem | None = None,
        note: str | None = None,
    ) -> None:
        step = Step(target.project_id, target.instance_id, target.proxy_id, mode_before, target.mode, Action.CHANGE)
        self.emit(
            step,
            outcome,
            started,
            attempts=call.attempts if call else 0,
            wire=call.wire if call else 0,
            error=error,
            note=note,
        )
