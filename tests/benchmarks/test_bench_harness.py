"""The benchmark harness still drives real workers: a change to the simulator once broke
it silently (every offer failed inside a task nobody awaited)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from harness import JobMix, drive, simulator, start_worker, stop_worker  # noqa: E402


async def test_paired_offers_reach_both_workers_and_are_timed(tmp_path):
    async with simulator() as sim:
        bare = await start_worker(sim, instrument=False, log_dir=tmp_path)
        hooked = await start_worker(sim, instrument=True, log_dir=tmp_path)
        try:
            seqs = await drive(sim, [bare.worker_id, hooked.worker_id],
                               JobMix(rate=20.0, job_s=0.1), 1.5, seed=1)
            assert len(seqs) >= 10
            answers = sim.paired("answer", bare.worker_id, hooked.worker_id, seqs)
            assert len(answers) == len(seqs)
            assert all(0 < a < 5 and 0 < b < 5 for a, b in answers)
            assert hooked.exporter_url and bare.exporter_url is None
        finally:
            await stop_worker(sim, bare)
            await stop_worker(sim, hooked)
