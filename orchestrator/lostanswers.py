"""Changes whose answer the run does not have: jobs left running by an earlier run, and PUTs whose answer was lost.

A PUT whose answer was lost after it was sent may have been applied, and a run that was killed left its PUTs'
jobs running unseen. Either way a change sent now could duplicate one already under way, so:
  1. at start, the running consistency jobs of every project are listed (`find_jobs_left_running`); an instance
     that runs one waits for it before its listing, and nothing is sent in a project whose running jobs cannot
     be listed (the engine fails its targets as `running_jobs_unknown`);
  2. after a lost or ambiguous answer (or a busy instance), `settled_after_ambiguity` waits for the instance's
     running jobs, then reads its listing again: at the goal (settled), not at it (safe to send again), or
     cannot tell (the engine settles `unknown`, never a blind re-send).

A class of its own rather than a part of Engine: it holds what step 1 found, for step 1's waits and the
engine's check, and needs only the job watcher, the listing and the stop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog

from .jobs import JobWatcher
from .listing import InstanceView
from .preview import Step

log = structlog.get_logger("orchestrator")


class LostAnswers:
    def __init__(
        self,
        watcher: JobWatcher,
        observe: Callable[[str, str], Awaitable[InstanceView]],
        *,
        is_stopping: Callable[[], bool],
    ) -> None:
        self._watcher = watcher
        self._observe = observe
        self._is_stopping = is_stopping
        self._busy_at_start: dict[tuple[str, str], list[str]] = {}
        # project -> (HTTP status, why) its running jobs could not be listed at start: nothing is sent there
        self.jobs_unknown: dict[str, tuple[int | None, str]] = {}

    async def find_jobs_left_running(self, projects: set[str]) -> None:
        """Which instances still run a consistency job (an earlier run's, killed or back to back)?

        Such a job may finish after our listing and make our change a duplicate, so those instances wait for
        it first. The listing is retried like any call; if it still fails (a permission, an outage), nothing is
        sent in that project: its targets fail as `running_jobs_unknown` (see Engine._run_instance).
        """
        for project_id in sorted(projects):
            running = await self._watcher.running(project_id)
            if running.problem is not None and not self._is_stopping():
                log.warning(
                    "consistency jobs still running cannot be listed: the project's targets are not changed",
                    project=project_id,
                    problem=running.problem,
                )
                self.jobs_unknown[project_id] = (running.status, running.problem)
            for instance_id, job_ids in running.by_instance.items():
                self._busy_at_start[(project_id, instance_id)] = job_ids

    async def wait_for_jobs_left_running(self, key: tuple[str, str]) -> None:
        """Before an instance's listing: wait for the jobs it ran at start (none if it ran none)."""
        if key in self._busy_at_start:
            await self._wait_for_jobs(key[0], key[1], self._busy_at_start[key])

    async def settled_after_ambiguity(self, step: Step) -> bool | None:
        """True: the proxy is at its goal. False: it is not (safe to send again). None: cannot tell.

        A job our lost PUT (or someone) started may still run: wait for the instance's running consistency
        jobs first, so that the listing shows their result.
        """
        if not await self._wait_instance_idle(step.project_id, step.instance_id):
            return None  # a job may still run unseen: a listing now could show the mode from before it
        view = await self._observe(step.project_id, step.instance_id)
        if view.proxies is None:
            return None
        for proxy in view.proxies:
            if proxy.proxy_id == step.proxy_id:
                return proxy.mode == step.mode_target if proxy.mode is not None else None
        return None

    async def _wait_for_jobs(self, project_id: str, instance_id: str, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            log.info("waiting for a job already running on the instance", instance=instance_id, job_id=job_id)
            await self._watcher.wait(project_id, job_id)

    async def _wait_instance_idle(self, project_id: str, instance_id: str) -> bool:
        """Wait for the consistency jobs running on the instance; False if they could not be listed."""
        running = await self._watcher.running(project_id)
        await self._wait_for_jobs(project_id, instance_id, running.by_instance.get(instance_id, []))
        return running.problem is None
