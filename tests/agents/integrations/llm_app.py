"""The Celery app the LLM client integration tests run (Redis database 3, its own queue): actions
that call the real ``openai``, ``anthropic`` and ``litellm`` clients, instrumented, against the
local wire-format server (``tests/agents/llm_server.py``) whose address each call carries.

Each action returns what the user's code got from the client (text, tool calls, response model,
chunk count), so a test can check the integration handed every response through untouched."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

from pydantic import BaseModel

from cruxcelery import ActionContext, Crux, CruxSettings, ToolContext
from cruxcelery.testing import MemorySink
from tests.celery_apps import json_app

REDIS = "redis://127.0.0.1:6379/3"
QUEUE = f"crux-llm-tests-{os.getpid()}"

app = json_app("crux_llm_tests", REDIS, QUEUE, result_expires=600)
crux = Crux(app, CruxSettings.from_env(flush_timeout_s=1.0, key_prefix="crux-llm"))
SINK = MemorySink()
crux.add_exporter(SINK)

SYSTEM = "You are a terse weather assistant."
WEATHER_TOOL_OPENAI = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}
WEATHER_TOOL_ANTHROPIC = {"name": "get_weather", "description": "The weather in a city.",
                          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                           "required": ["city"]}}


class Call(BaseModel):
    base_url: str
    mode: Literal["sync", "async", "stream", "astream", "helper", "ahelper"] = "sync"
    prompt: str = "What is the weather in Paris?"
    model: str = "gpt-local"
    timeout: float = 10.0  # the client's timeout
    max_retries: int = 0
    timeout_s: float | None = None  # instrument_*(timeout_s=): the generation's own deadline
    read: int | None = None  # a stream: read this many chunks, then close it
    drop: bool = False  # ... or just drop it, unclosed
    run_tool: bool = False  # run the tool the model asked for (with its call id)


class Weather(BaseModel):
    city: str


@crux.tool(name="get_weather", description="The weather in a city.", args=Weather)
def get_weather(ctx: ToolContext, args: Weather) -> str:
    return f"sunny in {args.city}"


def _summary(ctx: ActionContext, **found: Any) -> dict[str, Any]:
    return {"runId": ctx.run_id, **found}


def _run_tools(calls: list[tuple[str, str, Any]], args: Call) -> list[str]:
    if not args.run_tool:
        return []
    return [get_weather(arguments, call_id=call_id) for call_id, name, arguments in calls if name == "get_weather"]


# -- openai ------------------------------------------------------------------------------------------
def _openai_calls(message: Any) -> list[tuple[str, str, Any]]:
    import json

    return [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]


@crux.action(name="llm.openai", observability_name="ask openai", args=Call)
def ask_openai(ctx: ActionContext, args: Call) -> dict[str, Any]:
    import openai

    from cruxcelery.integrations.openai import instrument_openai

    options: dict[str, Any] = {"base_url": args.base_url + "/v1", "api_key": "test-key", "timeout": args.timeout,
                               "max_retries": args.max_retries}
    request: dict[str, Any] = {"model": args.model, "temperature": 0.2, "tools": [WEATHER_TOOL_OPENAI],
                               "messages": [{"role": "system", "content": SYSTEM},
                                            {"role": "user", "content": args.prompt}]}
    usage = {"stream_options": {"include_usage": True}}
    if args.mode in ("sync", "stream", "helper"):
        client = instrument_openai(openai.OpenAI(**options), timeout_s=args.timeout_s)
        if args.mode == "sync":
            response = client.chat.completions.create(**request)
            message = response.choices[0].message
            calls = _openai_calls(message)
            return _summary(ctx, text=message.content, calls=calls, model=response.model, ran=_run_tools(calls, args))
        if args.mode == "stream":
            stream = client.chat.completions.create(**request, **usage, stream=True)
            chunks, text = 0, []
            for chunk in stream:
                chunks += 1
                text += [c.delta.content for c in chunk.choices if c.delta.content]
                if args.read is not None and chunks >= args.read:
                    if not args.drop:
                        stream.close()
                    break
            del stream  # dropped: unless closed above, the span ends "abandoned" now
            return _summary(ctx, text="".join(text), chunks=chunks)
        with client.chat.completions.stream(**request, **usage) as helper:
            events = 0
            for _event in helper:
                events += 1
                if args.read is not None and events >= args.read:
                    break
            if args.read is not None:
                return _summary(ctx, events=events)
            final = helper.get_final_completion()
        calls = _openai_calls(final.choices[0].message)
        return _summary(ctx, text=final.choices[0].message.content, calls=calls, model=final.model,
                        ran=_run_tools(calls, args))

    async def run() -> dict[str, Any]:
        client = instrument_openai(openai.AsyncOpenAI(**options), timeout_s=args.timeout_s)
        if args.mode == "async":
            response = await client.chat.completions.create(**request)
            message = response.choices[0].message
            return _summary(ctx, text=message.content, calls=_openai_calls(message), model=response.model)
        if args.mode == "astream":
            stream = await client.chat.completions.create(**request, **usage, stream=True)
            chunks, text = 0, []
            async for chunk in stream:
                chunks += 1
                text += [c.delta.content for c in chunk.choices if c.delta.content]
                if args.read is not None and chunks >= args.read:
                    await stream.close()
                    break
            return _summary(ctx, text="".join(text), chunks=chunks)
        async with client.chat.completions.stream(**request, **usage) as helper:
            if args.read is not None:
                events = 0
                async for _event in helper:
                    events += 1
                    if events >= args.read:
                        break
                return _summary(ctx, events=events)
            final = await helper.get_final_completion()
        return _summary(ctx, text=final.choices[0].message.content, calls=_openai_calls(final.choices[0].message),
                        model=final.model)

    return asyncio.run(run())


# -- anthropic ---------------------------------------------------------------------------------------
def _anthropic_calls(message: Any) -> list[tuple[str, str, Any]]:
    return [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]


def _anthropic_text(message: Any) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


@crux.action(name="llm.anthropic", observability_name="ask anthropic", args=Call)
def ask_anthropic(ctx: ActionContext, args: Call) -> dict[str, Any]:
    import anthropic

    from cruxcelery.integrations.anthropic import instrument_anthropic

    options: dict[str, Any] = {"base_url": args.base_url, "api_key": "test-key", "timeout": args.timeout,
                               "max_retries": args.max_retries}
    request: dict[str, Any] = {"model": args.model, "max_tokens": 256, "system": SYSTEM,
                               "tools": [WEATHER_TOOL_ANTHROPIC],
                               "messages": [{"role": "user", "content": args.prompt}]}
    if args.mode in ("sync", "stream", "helper"):
        client = instrument_anthropic(anthropic.Anthropic(**options), timeout_s=args.timeout_s)
        if args.mode == "sync":
            message = client.messages.create(**request)
            calls = _anthropic_calls(message)
            return _summary(ctx, text=_anthropic_text(message), calls=calls, model=message.model,
                            ran=_run_tools(calls, args))
        if args.mode == "stream":
            stream = client.messages.create(**request, stream=True)
            chunks, text = 0, []
            for event in stream:
                chunks += 1
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    text.append(event.delta.text)
                if args.read is not None and chunks >= args.read:
                    stream.close()
                    break
            return _summary(ctx, text="".join(text), chunks=chunks)
        with client.messages.stream(**request) as helper:
            if args.read is not None:
                for events, _event in enumerate(helper, start=1):
                    if events >= args.read:
                        break
                return _summary(ctx, events=args.read)
            text = "".join(helper.text_stream)
            final = helper.get_final_message()
        calls = _anthropic_calls(final)
        return _summary(ctx, text=text, calls=calls, model=final.model, ran=_run_tools(calls, args))

    async def run() -> dict[str, Any]:
        client = instrument_anthropic(anthropic.AsyncAnthropic(**options), timeout_s=args.timeout_s)
        if args.mode == "async":
            message = await client.messages.create(**request)
            return _summary(ctx, text=_anthropic_text(message), calls=_anthropic_calls(message), model=message.model)
        if args.mode == "astream":
            stream = await client.messages.create(**request, stream=True)
            chunks = 0
            async for _event in stream:
                chunks += 1
                if args.read is not None and chunks >= args.read:
                    await stream.close()
                    break
            return _summary(ctx, chunks=chunks)
        async with client.messages.stream(**request) as helper:
            if args.read is not None:
                events = 0
                async for _event in helper:
                    events += 1
                    if events >= args.read:
                        break
                return _summary(ctx, events=events)
            final = await helper.get_final_message()
        return _summary(ctx, text=_anthropic_text(final), calls=_anthropic_calls(final), model=final.model)

    return asyncio.run(run())


# -- litellm -----------------------------------------------------------------------------------------
@crux.action(name="llm.litellm", observability_name="ask litellm", args=Call)
def ask_litellm(ctx: ActionContext, args: Call) -> dict[str, Any]:
    import litellm

    from cruxcelery.integrations.litellm import instrument_litellm

    instrument_litellm()
    base = args.base_url + "/v1" if args.model.startswith("openai/") else args.base_url
    request: dict[str, Any] = {"model": args.model, "api_base": base, "api_key": "test-key", "timeout": args.timeout,
                               "num_retries": args.max_retries, "max_tokens": 256, "tools": [WEATHER_TOOL_OPENAI],
                               "messages": [{"role": "system", "content": SYSTEM},
                                            {"role": "user", "content": args.prompt}]}
    usage = {"stream_options": {"include_usage": True}}
    if args.mode == "sync":
        response = litellm.completion(**request)
        message = response.choices[0].message
        calls = _openai_calls(message)
        return _summary(ctx, text=message.content, calls=calls, model=response.model, ran=_run_tools(calls, args))
    if args.mode == "stream":
        chunks, text = 0, []
        for chunk in litellm.completion(**request, **usage, stream=True):
            chunks += 1
            text += [c.delta.content for c in chunk.choices if c.delta.content]
        return _summary(ctx, text="".join(text), chunks=chunks)

    async def run() -> dict[str, Any]:
        if args.mode == "async":
            response = await litellm.acompletion(**request)
            message = response.choices[0].message
            return _summary(ctx, text=message.content, calls=_openai_calls(message), model=response.model)
        chunks, text = 0, []
        async for chunk in await litellm.acompletion(**request, **usage, stream=True):
            chunks += 1
            text += [c.delta.content for c in chunk.choices if c.delta.content]
        return _summary(ctx, text="".join(text), chunks=chunks)

    return asyncio.run(run())
