"""An AgentServer worker (livekit-agents 1.3+) with its metrics: `python agent_server.py start`."""

from livekit.agents import AgentServer, JobContext, cli
from livekit_agents_exporter import instrument


def load(server: AgentServer) -> float:
    return len(server.active_jobs) / 10  # share of 10 session slots in use (default: CPU)


server = AgentServer(load_fnc=load, load_threshold=0.7)


@server.rtc_session(agent_name="support")
async def entrypoint(ctx: JobContext) -> None:
    # your agent: await ctx.connect(), start an AgentSession, ...
    ctx.shutdown(reason="done")


instrument(server)  # serves http://0.0.0.0:10781/metrics

if __name__ == "__main__":
    cli.run_app(server)
