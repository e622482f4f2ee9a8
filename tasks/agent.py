"""The reference research agent: ``research agent`` plans with a generation (a deterministic local
model, see ``tasks.localmodel``), calls two tools (``search_notes`` in-process, ``fetch_source`` as a
Celery task of its own), drafts in two parallel branches (a streamed outline and a citation pick),
and hands the draft to the durable ``writer`` flow, which waits for a reviewer's approval.

Every step is recorded as what it is: ``agent.run`` > ``generation.call`` (with the tool calls the
model asked for; the one the agent does not execute, ``ask_user``, appears as ``executed: false``),
``tool.call`` spans, a ``composition.parallel`` span with a branch per draft part, and the writer
flow as a child run."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cruxcelery import ActionContext, ToolContext

from . import crux, localmodel

if __package__ == "tasks":  # the checkout: flows/ beside tasks/ (see tasks/__init__.py)
    from flows.writer import writer
else:  # the wheel: flows/ inside this package
    from .flows.writer import writer

ASK_USER = {"type": "function", "function": {
    "name": "ask_user", "description": "Ask the person who asked a question (answered in the UI, not here).",
    "parameters": {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}}}

NOTES = [
    "Flows keep their state in Redis: a resumed flow replays completed steps instead of running them again.",
    "A flow's execution lease lapses after a crash; the sweeper resumes it within the lease plus a sweep.",
    "Workers acknowledge late, so a task killed mid-run is delivered again (at least once).",
    "Signals sent before a flow reaches its wait are buffered, never lost.",
    "Durable children report their result once, when they stop retrying.",
]
SOURCES = {"durable docs": "docs/flows.md: how flows survive worker restarts, leases and the sweeper."}


class AgentArgs(BaseModel):
    question: str = Field(default="How do durable flows survive worker restarts?", min_length=1, max_length=2000)
    draft_id: str = Field(default="agent-draft", min_length=1, max_length=128)


class SearchArgs(BaseModel):
    query: str = Field(min_length=1, max_length=500)
    limit: int = Field(default=3, ge=1, le=10)


class FetchArgs(BaseModel):
    source: str = Field(min_length=1, max_length=500)


@crux.tool(name="search_notes", description="Search the team's research notes.", args=SearchArgs)
def search_notes(ctx: ToolContext, args: SearchArgs) -> list[str]:
    words = {w.lower() for w in args.query.split()}
    ranked = sorted(NOTES, key=lambda note: -sum(w in note.lower() for w in words))
    return ranked[: args.limit]


@crux.tool(name="fetch_source", description="Fetch a source document (runs as its own Celery task).",
           args=FetchArgs, as_task=True, task_name="research.fetch_source")
def fetch_source(ctx: ToolContext, args: FetchArgs) -> dict[str, str]:
    return {"source": args.source, "text": SOURCES.get(args.source, f"(no document named {args.source!r})")}


def _outline(ctx: ActionContext, question: str) -> str:
    messages = [{"role": "system", "content": "Outline a short article."}, {"role": "user", "content": question}]
    stream = ctx.crux.generation_stream(model=localmodel.MODEL, provider=localmodel.PROVIDER, messages=messages,
                                        timeout_s=30, name="outline draft")
    text = ""
    for chunk in stream.wrap(localmodel.stream(messages)):
        text += chunk.text
        if chunk.usage is not None:  # the last chunk: the usage arrives with it, before the stream ends
            stream.finish(response_model=localmodel.MODEL, finish_reasons=["stop"], input_tokens=chunk.usage[0],
                          output_tokens=chunk.usage[1], output=text)
    return text


def _citations(ctx: ActionContext, notes: list[str]) -> list[str]:
    messages = [{"role": "system", "content": "Pick the notes to cite."},
                *({"role": "user", "content": note} for note in notes)]
    with ctx.crux.generation(model=localmodel.MODEL, provider=localmodel.PROVIDER, messages=messages,
                             timeout_s=30, name="pick citations") as gen:
        answer = localmodel.complete(messages)
        gen.finish(response_model=answer.model, finish_reasons=[answer.finish_reason], response_id=answer.id,
                   input_tokens=answer.input_tokens, output_tokens=answer.output_tokens, cost_usd=answer.cost_usd,
                   output=answer.text)
    return [f"[{index + 1}] {note}" for index, note in enumerate(notes)]


@crux.action(name="research.agent", observability_name="research agent", root_primitive="agent.run",
             attributes={"agentId": "research"}, args=AgentArgs)
def research_agent(ctx: ActionContext, args: AgentArgs) -> dict[str, Any]:
    messages = [{"role": "system", "content": "You plan research, then hand the draft to a writer."},
                {"role": "user", "content": args.question}]
    tools = [search_notes.definition, fetch_source.definition, ASK_USER]
    with ctx.crux.generation(model=localmodel.MODEL, provider=localmodel.PROVIDER, messages=messages,
                             timeout_s=30, name="plan research") as gen:
        plan = localmodel.complete(messages, tools)
        for call in plan.tool_calls:
            gen.tool_requested(call.id, call.name, call.arguments)
        gen.finish(response_model=plan.model, finish_reasons=[plan.finish_reason], response_id=plan.id,
                   input_tokens=plan.input_tokens, output_tokens=plan.output_tokens, cost_usd=plan.cost_usd,
                   output=plan.text)
    notes: list[str] = []
    fetch_task = None
    for call in plan.tool_calls:  # ask_user is answered in the UI, not here: it stays executed: false
        if call.name == "search_notes":
            notes = search_notes(call.arguments, call_id=call.id)
        elif call.name == "fetch_source":  # another worker fetches it; the agent does not wait
            fetch_task = ctx.crux.run_tool(fetch_source, call.arguments, call_id=call.id).id
    drafted = ctx.crux.parallel("draft in parallel", {
        "outline": lambda: _outline(ctx, args.question),
        "citations": lambda: _citations(ctx, notes),
    }, max_workers=2)
    brief = f"{drafted['outline']}\n" + "\n".join(drafted["citations"])
    task_id = getattr(ctx.request, "id", None)  # the same across retries: one writer flow per agent task
    flow_id = writer.start({"draft_id": args.draft_id, "brief": brief},
                           idempotency_key=f"research.agent.{task_id}" if task_id else None)
    ctx.crux.artifact("handoff.payload", {"kind": "handoff.payload", "fromAgent": "research", "toAgent": "writer",
                                          "flowId": flow_id, "reason": "draft ready for review"})
    return {"flowId": flow_id, "plan": plan.text, "notes": notes, "fetchTask": fetch_task, **drafted}
