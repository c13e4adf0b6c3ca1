"""A synthetic agent for the demo, the tests and the benchmarks.

It behaves like a voice agent as far as capacity goes, without a media server: each
job holds a slot for the duration the dispatcher put in the job metadata, and the
load is the share of slots in use, the load function LiveKit recommends for agents
whose cost is per session. Job metadata can also ask the job to fail, so that
failure paths can be driven on purpose.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any


def job_spec(ctx_or_job: Any) -> dict[str, Any]:
    job = getattr(ctx_or_job, "job", ctx_or_job)
    try:
        spec = json.loads(job.metadata or "{}")
    except ValueError:
        return {}
    return spec if isinstance(spec, dict) else {}


async def synthetic_entrypoint(ctx: Any) -> None:
    """Hold the slot for ``duration`` seconds, or until the file ``release`` exists if that
    comes first (a dispatcher ends a group of jobs when it decides, whatever the machine's
    speed); ``fail`` = "raise" | "exit" fails on purpose."""
    spec = job_spec(ctx)
    duration = float(spec.get("duration", 1.0))
    release = spec.get("release")
    if isinstance(release, str) and release:
        await _until_released(release, duration)
    else:
        await asyncio.sleep(duration)
    if spec.get("fail") == "raise":
        raise RuntimeError("synthetic job failure requested by the dispatcher")
    if spec.get("fail") == "exit":
        os._exit(3)
    ctx.shutdown(reason="synthetic job done")


async def _until_released(path: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not os.path.exists(path) and loop.time() < deadline:
        await asyncio.sleep(0.05)


class SlotLoad:
    """``load_fnc``: running jobs over ``capacity``.

    So the worker is full at ``threshold * capacity``.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity

    def __call__(self, worker: Any) -> float:
        return min(1.0, len(worker.active_jobs) / self.capacity)
