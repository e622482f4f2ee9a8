"""The benchmark app: Redis database 9, its own queue; one plain Celery task and one crux action
doing the same nothing, and two flows."""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings, FlowScope

REDIS = os.environ.get("CRUX_BENCH_REDIS", "redis://127.0.0.1:6379/9")
QUEUE = os.environ.setdefault("CRUX_BENCH_QUEUE", f"crux-bench-{os.getpid()}")

app = Celery("crux_bench", broker=REDIS, backend=REDIS)
app.conf.update(task_default_queue=QUEUE, task_serializer="json", result_serializer="json",
                accept_content=["json"], worker_hijack_root_logger=False, worker_prefetch_multiplier=4)
crux = Crux(app, CruxSettings.from_env(key_prefix="crux-bench"))


class Empty(BaseModel):
    n: int = 0


@app.task(name="bench.plain")
def plain(n: int = 0) -> int:
    return n


@app.task(name="bench.plain_late", acks_late=True, reject_on_worker_lost=True)
def plain_late(n: int = 0) -> int:
    """The same delivery guarantees crux actions default to."""
    return n


@crux.action(name="bench.action", observability_name="bench action", args=Empty)
def action(ctx: ActionContext, args: Empty) -> int:
    return args.n


WORK_S = 0.02


@app.task(name="bench.plain_work")
def plain_work(n: int = 0) -> int:
    time.sleep(WORK_S)
    return n


@app.task(name="bench.plain_work_late", acks_late=True, reject_on_worker_lost=True)
def plain_work_late(n: int = 0) -> int:
    time.sleep(WORK_S)
    return n


@crux.action(name="bench.action_work", observability_name="bench action with work", args=Empty)
def action_work(ctx: ActionContext, args: Empty) -> int:
    time.sleep(WORK_S)
    return args.n


class Steps(BaseModel):
    steps: int


many_steps = crux.flow("bench-steps", args=Steps)
step_timings: list[float] = []


@many_steps.handler
def run_many_steps(scope: FlowScope[Steps], args: Steps, ctx: ActionContext) -> int:
    import time

    for index in range(args.steps):
        started = time.perf_counter()
        scope.step(f"s{index}", lambda i=index: i)
        step_timings.append(time.perf_counter() - started)
    return args.steps


class Go(BaseModel):
    ok: bool = True


waiting = crux.flow("bench-signal", args=Empty, signals={"go": Go})


@waiting.handler
def run_waiting(scope: FlowScope[Empty], args: Empty, ctx: ActionContext) -> Any:
    return scope.suspend("go").ok


class Nothing(BaseModel):
    pass


three_steps = crux.flow("bench-3step", args=Nothing)


@three_steps.handler
def run_three_steps(scope: FlowScope[Nothing], args: Nothing, ctx: ActionContext) -> int:
    """The end-to-end flow of the throughput row: three no-op steps, then completed."""
    total = 0
    for index in range(3):
        total += scope.step(f"s{index}", lambda i=index: i)
    return total


# -- recovery after kill -9 (``bench.recovery``) ------------------------------------------------

class Hold(BaseModel):
    seconds: float = 0.0


RECOVERY_KEY = "crux-bench:recovery"  # hash: flow id -> JSON list of the epoch times step "work" began
_redis_client: list[Any] = []


def _recovery_redis() -> Any:
    if not _redis_client:
        import redis

        _redis_client.append(redis.Redis.from_url(REDIS))
    return _redis_client[0]


recovering = crux.flow("bench-recover", args=Hold)


@recovering.handler
def run_recovering(scope: FlowScope[Hold], args: Hold, ctx: ActionContext) -> float:
    """Step ``work`` records when each attempt began; in the worker the bench kills
    (``CRUX_BENCH_VICTIM``) it then holds for ``args.seconds``, elsewhere it returns at once."""
    scope.step("first", lambda: 1)

    def work() -> float:
        began = time.time()
        _recovery_redis().rpush(f"{RECOVERY_KEY}:{scope.flow_id}", repr(began))
        if os.environ.get("CRUX_BENCH_VICTIM"):
            time.sleep(args.seconds)
        return began

    return float(scope.step("work", work))


# -- run_action publish cost (``bench.publish``) -----------------------------------------------

class PublishRounds(BaseModel):
    rounds: int
    queue: str


@crux.action(name="bench.publisher", observability_name="bench publisher", args=PublishRounds)
def publisher(ctx: ActionContext, args: PublishRounds) -> dict[str, list[float]]:
    """Inside one action: ``ctx.crux.run_action`` and ``apply_async`` of the same crux action,
    alternately, each timed (to a queue nobody consumes)."""
    timings: dict[str, list[float]] = {"run_action": [], "apply_async": []}
    for index in range(args.rounds):
        started = time.perf_counter()
        ctx.crux.run_action("child", action, {"n": index}, queue=args.queue)
        middle = time.perf_counter()
        action.apply_async(({"n": index},), queue=args.queue)
        ended = time.perf_counter()
        timings["run_action"].append(middle - started)
        timings["apply_async"].append(ended - middle)
    return timings


# -- the OpenTelemetry peer: a worker with opentelemetry-instrumentation-celery -------------------

if os.environ.get("CRUX_BENCH_OTEL"):
    from celery import signals as _otel_signals

    otel_spans: list[Any] = []

    @_otel_signals.worker_process_init.connect(weak=False)
    def _instrument(**_: Any) -> None:
        """In each pool child (the instrumentor's documented place for prefork): an SDK tracer
        provider whose spans end in memory, as cheap as an exporter gets."""
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        otel_spans.append(exporter)
        CeleryInstrumentor().instrument(tracer_provider=provider)


# -- profiling one no-op action in a prefork child (``python -m bench.profile``) -------------------

if os.environ.get("CRUX_BENCH_PROFILE"):
    from celery import signals

    _profiler: list[Any] = []

    @signals.worker_process_init.connect(weak=False)
    def _start_profiler(**_: Any) -> None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        _profiler.append(profiler)

    @signals.worker_process_shutdown.connect(weak=False)
    def _stop_profiler(**_: Any) -> None:
        if _profiler:
            from bench.profile import save

            save(_profiler.pop(), os.environ["CRUX_BENCH_PROFILE"])
