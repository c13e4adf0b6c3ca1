"""``python agent.py dev``: the worker is instrumented where it runs, and its errors are its own.

1.2's dev mode runs the worker in a child process that its file watcher spawns; the
process the user started only watches files. 1.8's dev mode runs the worker in the
process the user started (reloading moved to the ``lk`` CLI).
"""

from __future__ import annotations

import re

from scripts import EXAMPLES, run_script
from test_examples import dispatch_and_compare

from worker_harness import eventually


async def test_dev_mode_worker_is_instrumented_and_counted(sim, tmp_path):
    async with run_script(EXAMPLES / "run_app_options.py", sim.url, tmp_path, "dev") as script:
        await dispatch_and_compare(sim, script, jobs=3, one_at_a_time=True,
                                   idle_processes=False)


async def test_dev_without_a_server_fails_with_the_sdks_error_not_through_the_exporter(
        sim, tmp_path):
    """No LiveKit URL or key: the SDK's ValueError, and no exporter frame in its traceback."""
    async with run_script(EXAMPLES / "run_app_options.py", sim.url, tmp_path, "dev",
                          drop_env=("LIVEKIT_URL", "LIVEKIT_API_KEY",
                                    "LIVEKIT_API_SECRET")) as script:
        await eventually(lambda: "ValueError: " in script.log(), timeout=60,
                         what="the SDK's missing-configuration error")
        log = script.log()
    assert re.search(r"ValueError: (ws_url|api_key|api_secret) is required", log), log[-3000:]
    frames = re.findall(r'File "([^"]+)"', log)
    ours = [f for f in frames if "livekit_agents_exporter" in f]
    assert frames and not ours, f"exporter frames in the SDK's traceback: {ours}\n{log[-3000:]}"
