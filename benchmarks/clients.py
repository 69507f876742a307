"""The clients the benchmarks compare, each run in its own child process; prints one JSON object.

    clients.py orchestrator PLAN URL REPORT [aksk]   the run path of `apply` (run.execute) in-process
    clients.py aiohttp PLAN URL WORKERS              a bare aiohttp loop sending the same PUTs (the floor)
    clients.py sdk PLAN URL THREADS                  the official GaussDBClient, THREADS threads (1: a plain loop)
    clients.py validate PLAN                         orchestrator.plan.load_plan
    clients.py libyaml PLAN                          yaml.load(CSafeLoader), nothing else

`cpu` is time.process_time() around the work only (interpreter start-up and imports excluded), `wall` is
perf_counter() around the same, `maxrss_mb` the process's peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import AK, PROJECT, SK, TOKEN


def plan_targets(path: str) -> list[tuple[str, str]]:
    from orchestrator.plan import load_plan

    return [(t.instance_id, t.proxy_id) for t in load_plan(path).targets]


def timed(work: Callable[[], Any]) -> dict[str, Any]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    extra = work()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"cpu": cpu, "wall": wall, "maxrss_mb": peak, **(extra or {})}


def orchestrator(plan_path: str, url: str, report: str, kind: str = "token") -> dict[str, Any]:
    from orchestrator.auth import AkSkSigner, StaticToken
    from orchestrator.connect import Connection
    from orchestrator.credentials import AkSkCredentials
    from orchestrator.plan import load_plan
    from orchestrator.run import RunOptions, execute

    plan = load_plan(plan_path)
    auth = AkSkSigner(AkSkCredentials(AK, SK, project_id=PROJECT)) if kind == "aksk" else StaticToken(TOKEN)

    def work() -> dict[str, Any]:
        result = asyncio.run(execute(plan, Connection(url, auth), RunOptions(command="apply", report_path=report)))
        return {"exit_code": int(result.exit_code), "targets": len(result.outcomes), "wire": result.wire}

    return timed(work)


def bare_aiohttp(plan_path: str, url: str, workers: str) -> dict[str, Any]:
    import aiohttp

    todo = plan_targets(plan_path)
    body = json.dumps({"session_consistence": "true", "consistence_mode": "session"}).encode()
    headers = {"Content-Type": "application/json;charset=utf-8", "X-Auth-Token": TOKEN, "X-Project-Id": PROJECT}

    async def main() -> dict[str, Any]:
        queue = list(reversed(todo))
        ok = 0
        async with aiohttp.ClientSession() as session:

            async def worker() -> None:
                nonlocal ok
                while queue:
                    instance, proxy = queue.pop()
                    path = f"{url}/v3/{PROJECT}/instances/{instance}/proxy/{proxy}/session-consistence"
                    async with session.put(path, data=body, headers=headers) as response:
                        answer = await response.json(content_type=None)
                        ok += response.status == 200 and "job_id" in answer

            await asyncio.gather(*(worker() for _ in range(int(workers))))
        return {"targets": len(todo), "ok": ok}

    return timed(lambda: asyncio.run(main()))


def sdk(plan_path: str, url: str, threads: str) -> dict[str, Any]:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkgaussdb.v3 import (
        GaussDBClient,
        ModifyProxyConsistRequest,
        UpdateProxySessionConsistenceRequest,
    )

    todo = plan_targets(plan_path)
    credentials = BasicCredentials(AK, SK, PROJECT)
    client = GaussDBClient.new_builder().with_credentials(credentials).with_endpoints([url]).build()

    def change(target: tuple[str, str]) -> bool:
        body = ModifyProxyConsistRequest(session_consistence="true", consistence_mode="session")
        request = UpdateProxySessionConsistenceRequest(instance_id=target[0], proxy_id=target[1], body=body)
        return bool(client.update_proxy_session_consistence(request).job_id)

    def work() -> dict[str, Any]:
        if int(threads) == 1:
            ok = sum(change(t) for t in todo)
        else:
            with ThreadPoolExecutor(int(threads)) as pool:
                ok = sum(pool.map(change, todo))
        return {"targets": len(todo), "ok": ok}

    return timed(work)


def validate(plan_path: str) -> dict[str, Any]:
    from orchestrator.plan import load_plan

    return timed(lambda: {"targets": len(load_plan(plan_path).targets)})


def libyaml(plan_path: str) -> dict[str, Any]:
    import yaml

    def work() -> dict[str, Any]:
        with open(plan_path, "rb") as handle:
            data = yaml.load(handle, Loader=yaml.CSafeLoader)
        return {"targets": len(data["targets"])}

    return timed(work)


CLIENTS: dict[str, Callable[..., dict[str, Any]]] = {
    "orchestrator": orchestrator,
    "aiohttp": bare_aiohttp,
    "sdk": sdk,
    "validate": validate,
    "libyaml": libyaml,
}

if __name__ == "__main__":
    print(json.dumps(CLIENTS[sys.argv[1]](*sys.argv[2:])))
