"""The README's "try your own worker against the bundled simulator" recipe, executed.

Each command of the recipe is run as written, with two substitutions a parallel test
run needs: free ports instead of 7880 (the dispatch command's default ``--url``) and
10781, and an example file for ``agent.py``.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import sys
from pathlib import Path

from scripts import EXAMPLES, free_port, run_script, stop

from worker_harness import NEW_SDK, eventually

README = Path(__file__).resolve().parents[2] / "README.md"
RECIPE = re.compile(r"<!-- recipe: simulator -->\n```sh\n(.*?)```", re.S)


def recipe_commands() -> list[str]:
    [block] = RECIPE.findall(README.read_text())
    return [line.split("  #")[0].strip() for line in block.strip().splitlines()]


async def test_readme_simulator_recipe_runs_as_written(tmp_path):
    cmds = recipe_commands()
    shapes = [r"python -m livekit_agents_exporter\.simulator --port 7880 &",
              r"export LIVEKIT_URL=ws://127\.0\.0\.1:7880 LIVEKIT_API_KEY=\S+ "
              r"LIVEKIT_API_SECRET=\S+",
              r"python agent\.py start &",
              r"python -m livekit_agents_exporter\.simulator dispatch --agent-name support "
              r"--count 3",
              r"curl -s http://127\.0\.0\.1:10781/metrics \| grep jobs_launched_total"]
    assert len(cmds) == len(shapes), f"the recipe changed; update this test with it: {cmds}"
    assert all(re.fullmatch(s, c) for s, c in zip(shapes, cmds, strict=True)), \
        f"the recipe changed; update this test with it: {cmds}"
    sim_port = str(free_port())

    def argv(cmd: str) -> list[str]:
        words = shlex.split(cmd.rstrip(" &").replace("7880", sim_port))
        return [sys.executable if w == "python" else w for w in words]

    sim = subprocess.Popen(argv(cmds[0]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    try:
        banner = await asyncio.wait_for(asyncio.to_thread(sim.stdout.readline), 30)
        assert f"ws://127.0.0.1:{sim_port}" in banner, banner
        env = dict(w.split("=", 1) for w in argv(cmds[1])[1:])
        example = EXAMPLES / ("agent_server.py" if NEW_SDK else "run_app_options.py")
        async with run_script(example, env["LIVEKIT_URL"], tmp_path, *argv(cmds[2])[2:],
                              extra_env=env) as script:
            await script.scrape_when_up()

            # the worker registers a moment after its endpoint is up
            async def registered() -> bool:
                return (await script.scrape()).value("livekit_agents_worker_registered") == 1

            await eventually(registered, timeout=60, what="the worker registered")
            # the command's default --url is the recipe's port, 7880: name the free one instead
            dispatch = [*argv(cmds[3]), "--url", f"http://127.0.0.1:{sim_port}"]
            done = await asyncio.to_thread(subprocess.run, dispatch, capture_output=True,
                                           text=True, timeout=60)
            assert done.returncode == 0 and done.stdout.count(": assigned on AW_") == 3, (
                done.stdout, done.stderr, script.log()[-2000:])
            curl, _, grep = cmds[4].partition(" | ")
            url = script.metrics_url

            async def launched() -> bool:
                out = await asyncio.to_thread(
                    subprocess.run, shlex.split(curl.replace("http://127.0.0.1:10781/metrics",
                                                             url)),
                    capture_output=True, text=True, timeout=30)
                lines = [ln for ln in out.stdout.splitlines() if grep.split()[-1] in ln]
                return 'livekit_agents_jobs_launched_total{agent_name="support"} 3.0' in lines

            await eventually(launched, timeout=30, what="curl shows 3 jobs launched")
    finally:
        await stop(sim)
