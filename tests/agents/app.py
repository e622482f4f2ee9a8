"""The Celery app the agent tests run (Redis db 15): actions that record tools, generations and
parallel branches. In-thread (start_worker) or as a subprocess worker (``celery -A tests.agents.app``)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pydantic import BaseModel, SecretStr

from cruxcelery import ActionContext, Crux, CruxSettings, GenerationStream, ToolContext, generation
from cruxcelery.testing import MemorySink
from tests.celery_apps import json_app

REDIS = os.environ.get("CRUX_AGENTS_TEST_REDIS", "redis://127.0.0.1:6379/15")
QUEUE = os.environ.get("CRUX_TEST_QUEUE") or f"crux-agents-{os.getpid()}"

app = json_app("crux_agents_tests", REDIS, QUEUE, result_expires=600)
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=1.0, key_prefix="crux-a"))
SINK = MemorySink()
crux.add_exporter(SINK)


class Query(BaseModel):
    q: str
    api_key: SecretStr | None = None


class Scenario(BaseModel):
    mode: str = "plain"
    topic: str = "leases"


@crux.tool(name="lookup", description="Look a topic up in the local notes.", args=Query)
def lookup(ctx: ToolContext, args: Query) -> dict[str, Any]:
    ctx.crux.event("lookup.searched", {"q": args.q})
    return {"q": args.q, "hits": [f"{args.q}-1", f"{args.q}-2"], "callId": ctx.call_id, "runId": ctx.run_id}


@crux.tool(name="explode", args=Query)
def explode(ctx: ToolContext, args: Query) -> None:
    """Fails on purpose."""
    raise ValueError(f"cannot look up {args.q}")


@crux.tool(name="remote_lookup", description="Look a topic up in another worker.", args=Query, as_task=True)
def remote_lookup(ctx: ToolContext, args: Query) -> list[str]:
    return [f"remote {args.q}", str(ctx.call_id)]


@crux.action(name="a.generate", observability_name="generate", root_primitive="agent.run",
             attributes={"agentId": "tester"}, args=Scenario)
def generate(ctx: ActionContext, args: Scenario) -> dict[str, Any]:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": f"tell me about {args.topic}"}]
    with ctx.crux.generation(model="local-1", provider="local", messages=messages, timeout_s=30,
                             attributes={"temperature": 0.0}) as gen:
        gen.tool_requested("call_1", "lookup", {"q": args.topic})
        gen.tool_requested("call_2", "ask_user", {"question": "which one?"})
        gen.finish(response_model="local-1-2026", finish_reasons=["tool_calls"], input_tokens=12,
                   output_tokens=7, cost_usd=0.0001, output={"text": f"{args.topic} needs a lookup"},
                   response_id="resp_1")
    found = lookup({"q": args.topic}, call_id="call_1")
    return {"found": found, "generation": gen.span_id}


@crux.action(name="a.generate_fails", observability_name="generate fails", args=Scenario)
def generate_fails(ctx: ActionContext, args: Scenario) -> str:
    try:
        with ctx.crux.generation(model="local-1", provider="local", messages=[{"role": "user", "content": "x"}]):
            raise ConnectionError("provider unreachable")
    except ConnectionError:
        return "handled"


def _chunks(count: int, fail_at: int | None = None) -> Iterator[str]:
    for index in range(count):
        if index == fail_at:
            raise TimeoutError("stream stalled")
        yield f"chunk{index} "


@crux.action(name="a.stream", observability_name="stream", args=Scenario)
def stream(ctx: ActionContext, args: Scenario) -> str:
    out = ctx.crux.generation_stream(model="local-1", provider="local", timeout_s=5,
                                     messages=[{"role": "user", "content": "stream please"}])
    text = ""
    if args.mode == "break":
        for chunk in out.wrap(_chunks(5)):
            text += chunk
            if len(text) > 8:
                break
        return text
    if args.mode == "close":
        wrapped = out.wrap(_chunks(5))
        text = next(wrapped)
        wrapped.close()
        return text
    if args.mode == "error":
        try:
            for chunk in out.wrap(_chunks(5, fail_at=2)):
                text += chunk
        except TimeoutError:
            return "stalled"
        return text
    if args.mode == "async":
        return asyncio.run(_consume_async(out))
    for index, chunk in enumerate(out.wrap(_chunks(3))):
        text += chunk
        out.step(index=index, kind="text-delta")
        if index == 2:  # the last chunk carries the usage, as streamed APIs send it
            out.finish(response_model="local-1", finish_reasons=["stop"], input_tokens=3, output_tokens=3,
                       output=text)
    return text


async def _achunks(count: int) -> AsyncIterator[str]:
    for index in range(count):
        await asyncio.sleep(0)
        yield f"async{index} "


async def _consume_async(out: GenerationStream) -> str:
    text = ""
    async for chunk in out.wrap_async(_achunks(3)):
        text += chunk
    return text


@crux.action(name="a.tools", observability_name="tools", args=Scenario)
def tools(ctx: ActionContext, args: Scenario) -> dict[str, Any]:
    if args.mode == "fail":
        try:
            explode({"q": args.topic, "api_key": "sk-live-abcdefghijklmnop"}, call_id="call_x")
        except ValueError:
            return {"failed": True}
    if args.mode == "invalid":
        try:
            lookup({"nope": 1})
        except Exception as exc:
            return {"invalid": type(exc).__name__}
    if args.mode == "remote":
        result = ctx.crux.run_tool(remote_lookup, {"q": args.topic}, call_id="call_r")
        return {"task": result.id}
    return {"found": ctx.crux.run_tool(lookup, {"q": args.topic}, call_id="call_l")}


def _no_source() -> None:
    raise LookupError("branch c has no source")


@crux.action(name="a.parallel", observability_name="parallel", root_primitive="agent.run",
             attributes={"agentId": "fanout"}, args=Scenario)
def fan_out(ctx: ActionContext, args: Scenario) -> dict[str, Any]:
    def branch(name: str) -> Any:
        if args.mode == "fail" and name == "b":
            raise KeyError(f"branch {name} lost its source")
        with generation(model="local-1", provider="local", messages=[{"role": "user", "content": name}]) as gen:
            time.sleep(0.05)
            gen.finish(input_tokens=2, output_tokens=1)
        return lookup({"q": f"{args.topic}-{name}"})["hits"]

    branches = {"a": lambda: branch("a"), "b": lambda: branch("b")}
    if args.mode == "raise":
        branches["c"] = _no_source
    if args.mode == "fail":
        results = ctx.crux.parallel("fan out", branches, max_workers=2, return_exceptions=True)
        return {name: repr(value) if isinstance(value, BaseException) else value for name, value in results.items()}
    return ctx.crux.parallel("fan out", branches, max_workers=2)


agent_flow = crux.flow("agents-flow", args=Scenario)


@agent_flow.handler
def run_agent_flow(scope: Any, args: Scenario, ctx: ActionContext) -> dict[str, Any]:
    def ask() -> str:
        with ctx.crux.generation(model="local-1", provider="local") as gen:
            gen.tool_requested("call_f", "ask_user", {"question": "sure?"})
            gen.finish(input_tokens=1, output_tokens=1)
        return "asked"

    asked = scope.step("ask", ask)
    found = scope.step("fan out", lambda: ctx.crux.parallel("flow fan out", {
        "x": lambda: lookup({"q": "x"})["hits"], "y": lambda: lookup({"q": "y"})["hits"]}))
    return {"asked": asked, "found": found}
