"""A fake LiveKit server that speaks the real worker protocol and dispatch rules.

Workers connect to ``/agent`` exactly as they connect to livekit-server (JWT with the
agent grant, protobuf frames); ``dispatch()`` places a job following ``dispatch.py``.
Each node listens on its own port and shares one dispatcher, like a multi-node
cluster. Fault injection knobs (withheld or late assignments, dropped connections,
refused connections) drive the exporter's failure paths on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import WSMsgType, web
from livekit import api
from livekit.protocol import agent as proto
from livekit.protocol import models
from prometheus_client.exposition import choose_encoder

from . import dispatch as rules
from .server_log import ServerLog
from .truth import Truth, WorkerTruth
from .truth_metrics import GroundTruthMetrics

logger = logging.getLogger("livekit_agents_exporter.simulator")

_NODE = web.AppKey("node", int)
_STATUS = {proto.WorkerStatus.WS_AVAILABLE: rules.AVAILABLE, proto.WorkerStatus.WS_FULL: rules.FULL}


@dataclass
class SimulatorConfig:
    api_key: str = "devkey"
    api_secret: str = "secret"
    target_load: float = 0.7
    # the availability RPC's deadline (~3 s in livekit-server), after which the job is lost
    availability_timeout: float = 3.0
    nodes: int = 1
    host: str = "127.0.0.1"
    port: int = 0  # node 0; further nodes take any free port
    seed: int | None = None
    # empty like livekit-server's JobAssignment.url: the worker then uses its own URL
    room_url: str = ""
    # livekit-server's dispatch log lines for every dispatch (server_log.py): a path to
    # append to, "-" for stdout, None for none; encoding as logging.json selects it
    server_log: str | None = None
    server_log_encoding: str = "json"


@dataclass
class DispatchResult:
    outcome: str  # one of truth.OUTCOMES
    job_id: str
    worker_id: str | None = None
    attempts: int = 0
    tried: list[str] = field(default_factory=list)


@dataclass
class OfferAnswer:
    available: bool
    terminate: bool
    timed_out: bool = False
    closed: bool = False  # the worker went away before answering


class _Connection:
    def __init__(self, ws: web.WebSocketResponse, state: rules.WorkerState,
                 truth: WorkerTruth) -> None:
        self.ws, self.state, self.truth = ws, state, truth
        self.answers: dict[str, asyncio.Future[proto.AvailabilityResponse]] = {}
        self.status_seen = asyncio.Event()

    async def send(self, msg: proto.ServerMessage) -> None:
        await self.ws.send_bytes(msg.SerializeToString())


class Simulator:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.truth = Truth()
        self.metrics = GroundTruthMetrics()
        self.rng = random.Random(self.config.seed)
        self.withhold_assignments = False
        self.assignment_delay = 0.0
        self.refuse_connections = False
        self.refused_connections = 0  # connection attempts turned away by refuse_connections
        self._conns: dict[str, _Connection] = {}
        self._runners: list[web.AppRunner] = []
        self.node_urls: list[str] = []
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self.server_log: ServerLog | None = None

    # -- lifecycle -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.node_urls[0]

    @property
    def metrics_url(self) -> str:
        return self.url.replace("ws://", "http://", 1) + "/metrics"

    async def start(self) -> None:
        if self.config.server_log is not None and self.server_log is None:
            self.server_log = ServerLog.open(self.config.server_log,
                                             # one of ENCODINGS: the CLI chose it
                                             self.config.server_log_encoding,  # type: ignore[arg-type]
                                             self.config.api_key)
        for node in range(self.config.nodes):
            app = web.Application()
            app[_NODE] = node
            app.router.add_get("/agent", self._agent_ws)
            app.router.add_get("/metrics", self._metrics)
            app.router.add_post("/dispatch", self._dispatch_http)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            port = self.config.port if node == 0 else 0
            site = web.TCPSite(runner, self.config.host, port)
            try:
                await site.start()
            except OSError as exc:
                await runner.cleanup()
                await self.stop()
                raise OSError(exc.errno, f"simulator cannot listen on {self.config.host}:"
                                         f"{port}: {exc.strerror}") from None
            self._runners.append(runner)
            bound = runner.addresses[0][1]  # the runner has this one site: its port
            self.node_urls.append(f"ws://{self.config.host}:{bound}")

    async def stop(self) -> None:
        for conn in list(self._conns.values()):
            with contextlib.suppress(Exception):
                await conn.ws.close()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self.server_log is not None:
            self.server_log.close()
            self.server_log = None

    # -- HTTP ----------------------------------------------------------------------
    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(self.metrics.registry),
                            headers={"Content-Type": content_type})

    async def _dispatch_http(self, request: web.Request) -> web.Response:
        """``POST /dispatch?agent_name=NAME[&metadata=TEXT]``: place one job, answer the outcome.

        A development tool's door (the real server dispatches through rooms and the
        AgentDispatchService): lets a user send a job to their own worker with ``curl``.
        """
        agent_name = request.query.get("agent_name", "")
        metadata = request.query.get("metadata")
        result = await self.dispatch(agent_name=agent_name, metadata=metadata)
        return web.json_response({"outcome": result.outcome, "job_id": result.job_id,
                                  "worker_id": result.worker_id, "attempts": result.attempts})

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        try:
            claims = jwt.decode(header[7:], self.config.api_secret, algorithms=["HS256"],
                                options={"verify_aud": False})
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == self.config.api_key and bool(
            (claims.get("video") or {}).get("agent"))

    async def _agent_ws(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_connections:
            self.refused_connections += 1
            return web.Response(status=503, text="refusing connections (fault injection)")
        if not self._authorized(request):
            return web.Response(status=401, text="invalid token or missing agent grant")
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        conn = None
        try:
            first = await ws.receive(timeout=10)
            if first.type != WSMsgType.BINARY:
                return ws
            msg = proto.WorkerMessage()
            msg.ParseFromString(first.data)
            if msg.WhichOneof("message") != "register":
                await ws.close(message=b"expected register")
                return ws
            conn = await self._register(ws, request.app[_NODE], msg.register)
            async for frame in ws:
                if frame.type != WSMsgType.BINARY:
                    continue
                msg = proto.WorkerMessage()
                msg.ParseFromString(frame.data)
                await self._on_worker_message(conn, msg)
        finally:
            if conn is not None:
                await self._unregister(conn)
        return ws

    # -- worker messages -------------------------------------------------------------
    async def _register(self, ws: web.WebSocketResponse, node: int,
                        reg: proto.RegisterWorkerRequest) -> _Connection:
        worker_id = f"AW_{next(self._ids):04d}_{uuid.uuid4().hex[:6]}"
        state = rules.WorkerState(worker_id, node, reg.agent_name, reg.type)
        truth = WorkerTruth(worker_id, reg.agent_name, node)
        conn = _Connection(ws, state, truth)
        self._conns[worker_id] = conn
        self.truth.workers[worker_id] = truth
        self.truth.registrations[reg.agent_name] += 1
        self.metrics.init_agent(reg.agent_name)
        self.metrics.registrations.labels(reg.agent_name).inc()
        self.metrics.workers.labels(reg.agent_name).inc()
        resp = proto.ServerMessage()
        resp.register.worker_id = worker_id
        resp.register.server_info.edition = models.ServerInfo.Edition.Standard
        resp.register.server_info.version = "simulator"
        resp.register.server_info.node_id = f"node-{node}"
        await conn.send(resp)
        await self._notify()
        return conn

    async def _unregister(self, conn: _Connection) -> None:
        conn.state.registered = False
        conn.truth.connected = False
        self._conns.pop(conn.state.worker_id, None)
        self.metrics.workers.labels(conn.state.agent_name).dec()
        self.metrics.jobs_running.labels(conn.state.agent_name).dec(conn.truth.jobs_running)
        for fut in conn.answers.values():
            if not fut.done():
                fut.set_exception(ConnectionResetError("worker closed while asked"))
        await self._notify()

    async def _on_worker_message(self, conn: _Connection, msg: proto.WorkerMessage) -> None:
        which = msg.WhichOneof("message")
        truth, agent_name = conn.truth, conn.state.agent_name
        if which == "update_worker":
            upd = msg.update_worker
            if upd.HasField("status"):
                conn.state.status = _STATUS.get(upd.status, rules.FULL)
                if conn.state.status == rules.FULL and truth.last_status != rules.FULL:
                    truth.full_transitions += 1
                truth.last_status = conn.state.status
            conn.state.load = upd.load
            truth.last_load, truth.last_job_count = upd.load, upd.job_count
            truth.status_updates += 1
            conn.status_seen.set()
            await self._notify()
        elif which == "availability":
            answer = msg.availability
            truth.answers_by_job.setdefault(answer.job_id, []).append(answer.available)
            fut = conn.answers.get(answer.job_id)
            if answer.available:
                truth.answers_available += 1
                self.metrics.answers.labels(agent_name, "available").inc()
            else:
                truth.answers_unavailable += 1
                truth.answers_terminate += answer.terminate
                self.metrics.answers.labels(
                    agent_name, "terminate" if answer.terminate else "unavailable").inc()
            if fut is not None and not fut.done():
                fut.set_result(answer)
        elif which == "update_job":
            status = msg.update_job.status
            gauge = self.metrics.jobs_running.labels(agent_name)
            if status == proto.JobStatus.JS_RUNNING:
                truth.launched_jobs.add(msg.update_job.job_id)
                truth.jobs_running += 1
                truth.jobs_started += 1
                gauge.inc()
            elif status in (proto.JobStatus.JS_SUCCESS, proto.JobStatus.JS_FAILED):
                truth.jobs_running = max(0, truth.jobs_running - 1)
                truth.jobs_finished += 1
                truth.jobs_failed += status == proto.JobStatus.JS_FAILED
                gauge.dec()
        elif which == "ping":
            pong = proto.ServerMessage()
            pong.pong.last_timestamp = msg.ping.timestamp
            await conn.send(pong)
        elif which == "migrate_job":
            truth.migrated_jobs += len(msg.migrate_job.job_ids)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- waiting -------------------------------------------------------------------
    async def wait_for_workers(self, n: int, agent_name: str = "", timeout: float = 30) -> None:
        """Until ``n`` workers for the agent are connected and have reported a status."""

        def ready() -> bool:
            return sum(1 for c in self._conns.values() if c.state.agent_name == agent_name
                       and c.status_seen.is_set()) >= n

        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(ready)

        await asyncio.wait_for(wait(), timeout)

    def workers(self, agent_name: str | None = None) -> list[rules.WorkerState]:
        return [c.state for c in self._conns.values()
                if agent_name is None or c.state.agent_name == agent_name]

    # -- dispatch ------------------------------------------------------------------
    def _new_job(self, agent_name: str, metadata: dict[str, Any] | str | None,
                 job_type: int) -> proto.Job:
        job_id = f"AJ_{uuid.uuid4().hex[:12]}"
        room = f"room-{job_id[3:]}"
        meta = metadata if isinstance(metadata, str) else json.dumps(metadata or {})
        return proto.Job(id=job_id, dispatch_id=f"AD_{job_id[3:]}",
                         type=proto.JobType.Name(job_type),  # the enum by name: typed
                         room=models.Room(sid=f"RM_{job_id[3:]}", name=room),
                         agent_name=agent_name, metadata=meta)

    async def dispatch(self, agent_name: str = "", metadata: dict[str, Any] | str | None = None,
                       job_type: int = proto.JobType.JT_ROOM) -> DispatchResult:
        """Place one job as livekit-server does; the result is also counted in the truth."""
        job = self._new_job(agent_name, metadata, job_type)
        result = DispatchResult("no_worker_available", job.id)
        log = self.server_log
        registered = [w for w in self.workers(agent_name) if w.job_type == job_type]
        cands = rules.candidates(self.workers(), agent_name, job_type)
        node = rules.choose_node(cands, self.config.target_load, self.rng)
        remaining = [w for w in cands if w.node == node]
        deadline = asyncio.get_running_loop().time() + self.config.availability_timeout
        while remaining:
            worker = rules.pick_worker(remaining, self.rng)
            if worker is None:
                break
            remaining.remove(worker)
            result.attempts += 1
            result.tried.append(worker.worker_id)
            answer = await self._offer(worker.worker_id, job, deadline)
            if answer.closed:
                if log:
                    log.assign_failed(job, worker.worker_id, "worker closed", retry=True)
                continue
            if answer.timed_out:
                result.outcome = "availability_timeout"
                if log:  # the handler's context and the client's RPC deadline expire together
                    log.assign_failed(job, worker.worker_id, "context deadline exceeded",
                                      retry=False)
                    log.send_failed(job, "request timed out")
                break
            if answer.terminate:
                result.outcome = "rejected_terminate"  # JS_SUCCESS: livekit-server logs nothing
                break
            if answer.available:
                result.outcome, result.worker_id = "assigned", worker.worker_id
                if log:
                    log.assigned(job, worker.worker_id)
                await self._assign(worker.worker_id, job)
                break
            if log:
                log.assign_failed(job, worker.worker_id, "worker not available", retry=True)
        if result.outcome == "no_worker_available" and log:
            self._log_no_worker(log, job, registered, node)
        self.truth.outcomes.setdefault(agent_name, Counter())[result.outcome] += 1
        self.metrics.init_agent(agent_name)
        self.metrics.dispatches.labels(agent_name, result.outcome).inc()
        if result.outcome == "no_worker_available":
            logger.info("no worker available to handle job", extra={"job_id": job.id})
        return result

    def _log_no_worker(self, log: ServerLog, job: proto.Job, registered: list[rules.WorkerState],
                       node: int | None) -> None:
        """What livekit-server logs when no worker took the job, by where it failed."""
        if not registered:
            # LaunchJob: a named agent has no dispatcher; automatic dispatch (no name) gets the
            # namespaces with workers, none here, so it sends no request and logs nothing
            if job.agent_name:
                log.not_dispatching(job)
        elif node is None:  # every node with a worker for it bid 0
            nodes = len({w.node for w in registered})
            log.send_failed(job, f"no servers available (received {nodes} responses)")
        else:  # the chosen node's workers all refused, went away or were full
            alive = any(w.node == node for w in self.workers(job.agent_name)
                        if w.job_type == job.type)
            error = "no workers with sufficient capacity" if alive else "no workers available"
            log.no_worker(job, error)
            log.send_failed(job, error)

    async def offer(self, worker_id: str, agent_name: str = "",
                    metadata: dict[str, Any] | str | None = None, assign: bool = True,
                    job_type: int = proto.JobType.JT_ROOM) -> OfferAnswer:
        """Offer a job to one worker whatever its status (a request already in flight)."""
        job = self._new_job(agent_name, metadata, job_type)
        deadline = asyncio.get_running_loop().time() + self.config.availability_timeout
        answer = await self._offer(worker_id, job, deadline)
        if answer.available and assign:
            await self._assign(worker_id, job)
        return answer

    async def _offer(self, worker_id: str, job: proto.Job, deadline: float) -> OfferAnswer:
        conn = self._conns.get(worker_id)
        if conn is None:
            return OfferAnswer(False, False, closed=True)
        fut: asyncio.Future[proto.AvailabilityResponse] = asyncio.get_running_loop().create_future()
        conn.answers[job.id] = fut
        msg = proto.ServerMessage()
        msg.availability.job.CopyFrom(job)
        conn.truth.availability_requests += 1
        self.metrics.offers.labels(conn.state.agent_name).inc()
        try:
            await conn.send(msg)
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
            answer = await asyncio.wait_for(fut, remaining)
        except asyncio.TimeoutError:
            conn.truth.answer_timeouts += 1
            self.metrics.answers.labels(conn.state.agent_name, "timeout").inc()
            return OfferAnswer(False, False, timed_out=True)
        except (ConnectionError, RuntimeError):
            # the worker went away (see _unregister) or its socket is closing: next worker
            return OfferAnswer(False, False, closed=True)
        finally:
            conn.answers.pop(job.id, None)
        return OfferAnswer(answer.available, answer.terminate)

    async def _assign(self, worker_id: str, job: proto.Job) -> None:
        conn = self._conns.get(worker_id)
        if conn is None:
            return
        agent_name = conn.state.agent_name
        if self.withhold_assignments:
            conn.truth.assignments_withheld += 1
            self.metrics.withheld.labels(agent_name).inc()
            return
        if self.assignment_delay > 0:
            conn.truth.assignments_withheld += 1
            self.metrics.withheld.labels(agent_name).inc()
            asyncio.get_running_loop().call_later(
                self.assignment_delay,
                lambda: asyncio.ensure_future(self._send_assignment(conn, job)))
            return
        await self._send_assignment(conn, job)

    async def _send_assignment(self, conn: _Connection, job: proto.Job) -> None:
        token = (api.AccessToken(self.config.api_key, self.config.api_secret)
                 .with_identity(f"agent-{job.id}").with_kind("agent")
                 .with_grants(api.VideoGrants(room_join=True, room=job.room.name, agent=True))
                 .to_jwt())
        msg = proto.ServerMessage()
        msg.assignment.job.CopyFrom(job)
        msg.assignment.url = self.config.room_url
        msg.assignment.token = token
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.send(msg)
            conn.truth.assignments_sent += 1
            self.metrics.assignments.labels(conn.state.agent_name).inc()

    # -- fault injection and room events ---------------------------------------------
    async def terminate_job(self, job_id: str, worker_id: str) -> None:
        conn = self._conns.get(worker_id)
        if conn is not None:
            msg = proto.ServerMessage()
            msg.termination.job_id = job_id
            await conn.send(msg)

    async def disconnect_worker(self, worker_id: str) -> None:
        conn = self._conns.get(worker_id)
        if conn is not None:
            await conn.ws.close()
