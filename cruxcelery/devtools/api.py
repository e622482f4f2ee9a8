"""The Starlette application: ingest, the JSON API, server-sent events and the web UI."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import cruxcelery.devtools.fastjson as fastjson
import cruxcelery.devtools.queries as queries
from cruxcelery.devtools.auth import COOKIE, TokenGate
from cruxcelery.devtools.batch import BatchError, split_batch
from cruxcelery.devtools.database import Database
from cruxcelery.devtools.guard import LoopbackGuard
from cruxcelery.devtools.ingest import IngestResult
from cruxcelery.devtools.live import PASS_INTERVAL_S, Hub, reconcile_forever
from cruxcelery.devtools.reconcile import STALE_AFTER_MS
from cruxcelery.devtools.spoolreader import DirectIngest, SpoolReader
from cruxcelery.devtools.store import CACHE_BYTES, DevtoolsService, FlowSnapshots

__all__ = ["MAX_BODY_BYTES", "DevtoolsConfig", "create_app"]

MAX_BODY_BYTES = 1024 * 1024
RETRY_AFTER_S = 1
SQLITE_MAX = 2**63 - 1
STATIC = Path(str(resources.files("cruxcelery.devtools") / "static"))


@dataclass
class DevtoolsConfig:
    """``db``: a path or ``":memory:"``. ``token``: required on every request but ``/api/health``
    when set (the CLI sets it when listening beyond loopback). ``allowed_hosts``: names besides
    localhost and loopback IPs that a loopback server answers in ``Host`` and ``Origin`` (``guard``)."""

    db: str | Path = ":memory:"
    token: str | None = None
    flow_snapshots: FlowSnapshots | None = None
    stale_after_ms: float = STALE_AFTER_MS
    busy_timeout_s: float = 5.0
    pass_interval_s: float = PASS_INTERVAL_S
    clock: Callable[[], float] | None = None
    on_close: list[Callable[[], None]] = field(default_factory=list)
    spool_redis_url: str | None = None  # read the telemetry spool at ``spool_key`` there directly
    spool_key: str = "crux:telemetry"
    allowed_hosts: tuple[str, ...] = ()
    detail_cache_bytes: int = CACHE_BYTES  # the bound of each run-detail cache (``store``)


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(model.model_dump_json(by_alias=True), status, headers, media_type="application/json")


def ingest_body(result: IngestResult) -> bytes:
    """``IngestOut`` as JSON (built directly: a pydantic model per record cost more than storing it)."""
    dispositions = [{"index": d.index, "recordId": d.record_id, "outcome": d.outcome, "code": d.code,
                     "retryable": d.retryable, "duplicate": d.duplicate, "message": d.message}
                    for d in result.dispositions]
    accepted = sum(d.outcome == "accepted" for d in result.dispositions)
    return fastjson.dumps({"dispositions": dispositions, "accepted": accepted,
                           "rejected": len(dispositions) - accepted, "unknownRecordTypes": result.unknown_types})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers)


async def _read_body(request: Request) -> bytes | None:
    """The body, or ``None`` when it is over ``MAX_BODY_BYTES``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class _Api:
    def __init__(self, service: DevtoolsService, hub: Hub) -> None:
        self.service = service
        self.hub = hub

    async def ingest(self, request: Request) -> Response:
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            return _error(415, "the body must be sent as Content-Type: application/json")
        body = await _read_body(request)
        if body is None:
            return _error(413, f"body over {MAX_BODY_BYTES} bytes")
        try:
            records = split_batch(body)
        except BatchError as exc:
            return _error(exc.status, exc.message)
        result = await run_in_threadpool(self.service.ingest, records)
        self.hub.publish_runs(result.touched_runs, result.new_runs)
        headers = {"Retry-After": str(RETRY_AFTER_S)} if result.retryable else None
        return Response(ingest_body(result), 202, headers, media_type="application/json")

    async def runs(self, request: Request) -> Response:
        q = request.query_params
        try:
            limit = int(q.get("limit") or 50)
        except ValueError:
            return _error(400, "limit must be an integer")
        where = queries.RunFilter(status=q.get("status") or None, name=q.get("name") or None,
                                  root_primitive=q.get("rootPrimitive") or None, flow_id=q.get("flowId") or None,
                                  since=q.get("since") or None, parent_run_id=q.get("parentRunId") or None)
        try:
            out, changes = await run_in_threadpool(self.service.list_runs, where, q.get("cursor") or None, limit)
        except ValueError as exc:
            return _error(400, str(exc))
        self.hub.publish_changes(changes)
        return _json(out)

    async def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        flag = request.query_params.get("infrastructure", "false").lower()
        if flag not in ("true", "false", "1", "0"):
            return _error(400, "infrastructure must be true or false")
        found = await run_in_threadpool(self.service.run_detail_json, run_id, infrastructure=flag in ("true", "1"))
        if found is None:
            return _error(404, f"no records for run {run_id}")
        body, change = found
        if change is not None:
            self.hub.publish_changes([change])
        return Response(body, media_type="application/json")

    async def records(self, request: Request) -> Response:
        raw = await run_in_threadpool(self.service.raw_records, request.path_params["run_id"])
        if raw is None:
            return _error(404, "no records for this run")
        return Response(raw, media_type="application/json")

    async def all_records(self, request: Request) -> Response:
        """Every stored record in arrival order, raw, paged by ``after`` (a sequence number)."""
        try:
            after = int(request.query_params.get("after") or 0)
            limit = int(request.query_params.get("limit") or 1000)
        except ValueError:
            return _error(400, "after and limit must be integers")
        if not -SQLITE_MAX <= after <= SQLITE_MAX:
            return _error(400, f"after must be a record sequence number (from {-SQLITE_MAX} to {SQLITE_MAX})")
        return Response(await run_in_threadpool(self.service.records_after, after, limit),
                        media_type="application/json")

    async def search(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        if not query:
            return _error(400, "q is required")
        return _json(await run_in_threadpool(self.service.search, query))

    async def flow(self, request: Request) -> Response:
        return _json(await run_in_threadpool(self.service.flow, request.path_params["flow_id"]))

    async def stats(self, request: Request) -> Response:
        return _json(await run_in_threadpool(self.service.stats))

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def live(self, request: Request) -> Response:
        run_id = request.query_params.get("runId") or None

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 1000\n: connected\n\n"
            async for message in self.hub.subscribe(run_id):
                if message is None:
                    yield b": keep-alive\n\n"
                else:
                    yield f"event: {message['type']}\ndata: {json.dumps(message)}\n\n".encode()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def page(self, request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
        token = request.query_params.get("token")
        if token:
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response


def _spool_reader(config: DevtoolsConfig, service: DevtoolsService, hub: Hub,
                  loop: asyncio.AbstractEventLoop) -> SpoolReader | None:
    if not config.spool_redis_url:
        return None

    def ingested(result: IngestResult) -> None:
        loop.call_soon_threadsafe(hub.publish_runs, result.touched_runs, result.new_runs)

    return SpoolReader(config.spool_redis_url, config.spool_key, DirectIngest(service.ingest, ingested)).start()


def create_app(config: DevtoolsConfig | None = None) -> Starlette:
    """The devtools ASGI app. Its lifespan opens the database and runs the 1 s pass."""
    config = config or DevtoolsConfig()
    db = Database(config.db, busy_timeout_s=config.busy_timeout_s)
    service_kwargs = {"clock": config.clock} if config.clock is not None else {}
    service = DevtoolsService(db, stale_after_ms=config.stale_after_ms, flow_snapshots=config.flow_snapshots,
                              cache_bytes=config.detail_cache_bytes, **service_kwargs)
    hub = Hub()
    api = _Api(service, hub)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(reconcile_forever(service, hub, config.pass_interval_s))
        reader = _spool_reader(config, service, hub, asyncio.get_running_loop())
        try:
            yield
        finally:
            if reader is not None:
                await run_in_threadpool(reader.stop)
            hub.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            db.close()
            for hook in config.on_close:
                hook()

    routes = [
        Route("/api/observability/records", api.ingest, methods=["POST"]),
        Route("/api/records", api.all_records),
        Route("/api/runs", api.runs),
        Route("/api/runs/{run_id}", api.run),
        Route("/api/runs/{run_id}/records", api.records),
        Route("/api/search", api.search),
        Route("/api/flows/{flow_id}", api.flow),
        Route("/api/live", api.live),
        Route("/api/stats", api.stats),
        Route("/api/health", api.health),
        Route("/", api.page),
        Route("/runs/{run_id}", api.page),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(LoopbackGuard, allowed_hosts=config.allowed_hosts)]
    if config.token:
        middleware.append(Middleware(TokenGate, token=config.token))
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.service = service
    app.state.hub = hub
    return app
