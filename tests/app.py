"""The Celery app the test suite runs: in-thread (start_worker) or as a subprocess worker
(``celery -A tests.app worker``). Its queue, Redis db and records file come from the environment."""

from __future__ import annotations

import os
import time
from typing import Any

from celery import chain, chord, group
from pydantic import BaseModel, SecretStr

from cruxcelery import ActionContext, Crux, CruxSettings, capture_context
from cruxcelery.testing import MemorySink
from tests.celery_apps import json_app

REDIS = os.environ.get("CRUX_TEST_REDIS", "redis://127.0.0.1:6379/12")
QUEUE = os.environ.setdefault("CRUX_TEST_QUEUE", f"crux-tests-{os.getpid()}")

app = json_app("crux_tests", REDIS, QUEUE, result_expires=600)
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=1.0, key_prefix="crux-t"))
SINK = MemorySink()
crux.add_exporter(SINK)


class Topic(BaseModel):
    topic: str
    depth: int = 0


@crux.action(name="t.leaf", observability_name="leaf", args=Topic)
def leaf(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    return {"topic": args.topic, "runId": ctx.run_id}


@crux.action(name="t.child", observability_name="child", args=Topic)
def child(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    ctx.crux.run_action("call grandchild", leaf, {"topic": args.topic + "/grandchild"})
    return {"ok": True}


@crux.action(name="t.parent", observability_name="parent", root_primitive="agent.run",
             attributes={"agentId": "tester"}, args=Topic)
def parent(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    ctx.crux.run_action("call child", child, {"topic": args.topic})
    return {"ok": True}


class Boom(RuntimeError):
    def __init__(self, message: str, api_key: str) -> None:
        super().__init__(message)
        self.api_key = api_key
        self.code = 42


@crux.action(name="t.fails", observability_name="fails on purpose", args=Topic)
def fails(ctx: ActionContext, args: Topic) -> None:
    raise Boom(f"cannot do {args.topic}", api_key="sk-secret")


@crux.action(name="t.parent_of_failing", observability_name="parent of failing", args=Topic)
def parent_of_failing(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    ctx.crux.run_action("call failing child", fails, {"topic": args.topic})
    return {"ok": True}


@app.task(name="t.plain_add")
def plain_add(x: int, y: int) -> int:
    return x + y


@app.task(name="t.plain_relay")
def plain_relay(topic: str) -> None:
    leaf.delay({"topic": topic})  # a plain task inside a run: the context is restored for it


@crux.action(name="t.propagation", observability_name="propagation", args=Topic)
def propagation(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    """Every way of publishing from inside an action; each target records its run."""
    kind = args.topic
    if kind == "delay":
        leaf.delay({"topic": "delay"})
    elif kind == "chain":
        chain(leaf.s({"topic": "chain-1"}), echo.s()).apply_async()
    elif kind == "group":
        group(leaf.s({"topic": "group-1"}), leaf.s({"topic": "group-2"})).apply_async()
    elif kind == "chord":
        chord([leaf.s({"topic": "chord-1"}), leaf.s({"topic": "chord-2"})], collect.s()).apply_async()
    elif kind == "send_task":
        app.send_task("t.leaf", kwargs={"topic": "send_task"})
    elif kind == "plain":
        ctx.crux.run_action("call plain", plain_relay, {"topic": "plain"})
    return {"ok": True}


@crux.action(name="t.echo", observability_name="echo")
def echo(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    return {"echo": args, "runId": ctx.run_id}


@crux.action(name="t.collect", observability_name="collect")
def collect(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    return {"collected": True}


@app.task(name="t.collect_plain")
def collect_plain(results: list[Any]) -> int:
    return len(results)


@crux.action(name="t.retrying", observability_name="retrying", args=Topic)
def retrying(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    if ctx.request.retries < args.depth:
        raise ctx.task.retry(countdown=0.1, max_retries=5)
    return {"attempts": ctx.request.retries + 1, "runId": ctx.run_id}


@crux.action(name="t.parent_of_retrying", observability_name="parent of retrying", args=Topic)
def parent_of_retrying(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    ctx.crux.run_action("call retrying child", retrying, args)
    return {"ok": True}


@crux.action(name="t.schedules", observability_name="schedules", args=Topic)
def schedules(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    if args.topic == "continuation":
        ctx.crux.scheduler.run_after("continue later", 0.1, leaf, {"topic": "continued"},
                                     observability=capture_context())
    else:
        ctx.crux.scheduler.run_after("follow up", 0.1, leaf, {"topic": "detached"})
    return {"ok": True}


@crux.action(name="t.query", observability_name="queries", args=Topic)
def queries(ctx: ActionContext, args: Topic) -> int:
    found = ctx.crux.run_query("load inputs", lambda topic: len(topic), args.topic)
    ctx.crux.run_mutation("store result", lambda: None)
    return int(found)


@crux.action(name="t.sleepy", observability_name="sleepy", args=Topic)
def sleepy(ctx: ActionContext, args: Topic) -> int:
    time.sleep(args.depth / 1000.0)
    return args.depth


@crux.action(name="t.threaded", observability_name="threaded")
def threaded(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    """Continues its run in a thread through capture_context / with_context."""
    import threading

    from cruxcelery import with_context

    carrier = capture_context()
    seen: dict[str, Any] = {}

    def work() -> None:
        with with_context(carrier):
            seen["value"] = ctx.crux.run_query("in thread", lambda: 7)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return seen


@crux.action(name="t.json_carrier", observability_name="json carrier")
def json_carrier(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    """Sends the carrier as JSON text, as another queue would, and publishes under it."""
    from cruxcelery import with_context

    carrier = capture_context()
    assert carrier is not None
    with with_context(carrier.model_dump_json()):
        leaf.delay({"topic": "from json"})
    return {}


@crux.action(name="t.applies", observability_name="applies")
def applies(ctx: ActionContext, args: dict[str, Any]) -> Any:
    return leaf.apply(args=({"topic": "inline"},)).get()




class Opaque:
    """An object with no JSON form."""

    def __repr__(self) -> str:
        return "<Opaque thing>"


@crux.action(name="t.unsafe", observability_name="unsafe values")
def unsafe(ctx: ActionContext, args: dict[str, Any]) -> None:
    cyclic: dict[str, Any] = {"name": "loop"}
    cyclic["self"] = cyclic
    values = {"cyclic": cyclic, "huge": "x" * 100_000, "binary": b"\x00\xffraw", "object": Opaque(),
              "many": list(range(1000))}
    ctx.crux.event("unsafe.event", values)
    ctx.crux.artifact("unsafe.artifact", values)


@crux.action(name="t.deadlines", observability_name="deadlines", time_limit=30)
def deadlines(ctx: ActionContext, args: dict[str, Any]) -> None:
    ctx.crux.run_query("bounded query", lambda: None, timeout_s=5)


@crux.action(name="t.dies_once", observability_name="dies once", args=Topic)
def dies_once(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    """The pool child running it is killed the first time (the worker's parent then requeues it)."""
    import signal

    from tests.counters import Counters

    if Counters(REDIS).bump(args.topic, "dies_once") == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"runId": ctx.run_id}


@crux.action(name="t.parent_of_dying", observability_name="parent of dying", args=Topic)
def parent_of_dying(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    ctx.crux.run_action("call dying child", dies_once, args)
    return {"ok": True}


# -- outcomes: Celery's own control flow ----------------------------------------------------------

@crux.action(name="t.big", observability_name="big value", args=Topic)
def big(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    deep: Any = "bottom"
    for _ in range(12):
        deep = {"down": deep}
    return {"items": list(range(500)), "text": "x" * 70_000, "deep": deep}


@crux.action(name="t.flaky_auto", observability_name="flaky autoretry", args=Topic,
             autoretry_for=(RuntimeError,), max_retries=3, retry_kwargs={"countdown": 0.05})
def flaky_auto(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    from tests.counters import Counters

    if Counters(REDIS).bump(args.topic, "flaky_auto") <= args.depth:
        raise RuntimeError("flaky: try again")
    return {"attempts": ctx.request.retries + 1}


@crux.action(name="t.replacing", observability_name="replacing", args=Topic)
def replacing(ctx: ActionContext, args: Topic) -> None:
    raise ctx.task.replace(leaf.s({"topic": args.topic + "/replacement"}))


@crux.action(name="t.rejecting", observability_name="rejecting", args=Topic)
def rejecting(ctx: ActionContext, args: Topic) -> None:
    from celery.exceptions import Reject

    raise Reject("not for us", requeue=False)


import tests.app_flows  # noqa: E402,F401  (the flows the suite drives register on this app)


class ApiKey(BaseModel):
    key: SecretStr


@crux.action(name="t.leaks_its_key", observability_name="leaks its key", args=ApiKey)
def leaks_its_key(ctx: ActionContext, args: ApiKey) -> None:
    """Fails the way HTTP clients do: the key in the message, plain, quoted, in a URL and base64."""
    import base64
    from urllib.parse import quote

    key = args.key.get_secret_value()
    encoded = base64.b64encode(key.encode()).decode()
    raise PermissionError(f"401 for url: https://api.example/v1?key={quote(key)} (key {key!r}, "
                          f"basic {encoded}, plain {key})")



class ApiKeyIn(BaseModel):
    key: SecretStr
    shape: str


class _AuthFailed(Exception):
    """A client library's error whose message ``__str__`` builds from an attribute, not ``args``."""

    def __init__(self, url: str = "") -> None:  # pickles (with its attributes), as Celery needs
        super().__init__()
        self.url = url

    def __str__(self) -> str:
        return f"401 for url: {self.url}"


@crux.action(name="t.leaks_its_key_elsewhere", observability_name="leaks its key elsewhere", args=ApiKeyIn)
def leaks_its_key_elsewhere(ctx: ActionContext, args: ApiKeyIn) -> None:
    """Fails with the key where redacting the message's ``args`` does not reach: a pydantic
    ``ValidationError`` (``input_value=...``), an attribute ``__str__`` reads, a dict in ``args``."""
    key = args.key.get_secret_value()
    if args.shape == "validation":
        class Port(BaseModel):
            port: int

        Port(port=key)  # type: ignore[arg-type]
    if args.shape == "attribute":
        raise _AuthFailed(f"https://api.example/v1?key={key}")
    raise LookupError({"401 for url": "https://api.example/v1", "key": key})


@crux.action(name="t.retries_a_leaky_call", observability_name="retries a leaky call", args=ApiKeyIn,
             autoretry_for=(_AuthFailed,), max_retries=1, retry_kwargs={"countdown": 0.05})
def retries_a_leaky_call(ctx: ActionContext, args: ApiKeyIn) -> dict[str, Any]:
    """Fails once with an error whose text shows the key; ``autoretry_for`` retries it."""
    if ctx.request.retries == 0:
        raise _AuthFailed(f"https://api.example/v1?key={args.key.get_secret_value()}")
    return {"attempts": ctx.request.retries + 1}
