"""A worker built by cli.run_app from WorkerOptions (any livekit-agents 1.2+): `... start`."""

from livekit.agents import JobContext, WorkerOptions, cli
from livekit_agents_exporter import instrument


async def entrypoint(ctx: JobContext) -> None:
    # your agent: await ctx.connect(), start an AgentSession, ...
    ctx.shutdown(reason="done")


def my_load() -> float:
    return 0.0  # your own measure of how busy the worker is, 0..1


opts = WorkerOptions(entrypoint_fnc=entrypoint, agent_name="support", load_fnc=my_load,
                     load_threshold=0.8)
instrument(opts)  # serves http://0.0.0.0:10781/metrics

if __name__ == "__main__":
    cli.run_app(opts)
