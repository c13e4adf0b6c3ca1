"""A worker process that forks after ``instrument()``, the child running the worker.

    python fork_worker.py WS_URL API_KEY API_SECRET

Prints ``port <p>`` and ``child <pid>``; the parent exits when a line arrives on stdin
(the test decides when), the child runs the worker until it is killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from livekit.agents import JobExecutorType  # noqa: E402 - needs the path above
from livekit.agents import worker as sdk_worker  # noqa: E402 - needs the path above

from livekit_agents_exporter import instrument  # noqa: E402 - needs the path above
from livekit_agents_exporter.synthetic import SlotLoad, synthetic_entrypoint  # noqa: E402 - needs the path above
from worker_harness import NEW_SDK, _worker_from_options  # noqa: E402 - needs the path above


def main() -> None:
    url, key, secret = sys.argv[1:4]
    opts = sdk_worker.WorkerOptions(
        entrypoint_fnc=synthetic_entrypoint, load_fnc=SlotLoad(4), load_threshold=0.7,
        job_executor_type=JobExecutorType.THREAD, num_idle_processes=0, ws_url=url,
        api_key=key, api_secret=secret, port=0, agent_name="agent")
    exporter = instrument(opts, host="127.0.0.1", port=0)
    print(f"port {exporter.server.port}", flush=True)
    pid = os.fork()
    if pid:
        print(f"child {pid}", flush=True)
        sys.stdin.readline()
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)  # the test's pipes are the parent's
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    asyncio.run(_run(opts))


async def _run(opts: sdk_worker.WorkerOptions) -> None:
    worker = _worker_from_options(opts)  # inside the loop: the 1.2 Worker binds to it
    await (worker.run(devmode=False) if NEW_SDK else worker.run())


if __name__ == "__main__":
    main()
