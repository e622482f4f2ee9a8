"""Research actions: ``plan research`` fans out to child actions across workers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cruxcelery import ActionContext

from . import crux


class PlanArgs(BaseModel):
    thread_id: str = Field(min_length=1, max_length=128)
    draft_id: str = Field(default="draft-1", min_length=1, max_length=128)
    question: str = "How do durable flows survive worker restarts?"


class Plan(BaseModel):
    thread_id: str
    steps: list[str]
    sources: int


class RankArgs(BaseModel):
    draft_id: str
    citations: list[str]


class StreamArgs(BaseModel):
    thread_id: str


_INPUTS = {
    "sources": ["celery docs", "kombu docs", "redis docs"],
    "citations": ["celery#2599", "kombu#337", "crux/flows"],
}


def load_inputs(thread_id: str) -> dict[str, Any]:
    """Stands in for a database read the app owns."""
    return {"threadId": thread_id, **_INPUTS}


@crux.action(name="research.rank_citations", observability_name="rank citations", args=RankArgs)
def rank_citations(ctx: ActionContext, args: RankArgs) -> list[str]:
    ctx.crux.run_action("verify citations", verify_citations, {"draft_id": args.draft_id,
                                                                 "citations": args.citations})
    return sorted(args.citations)


@crux.action(name="research.verify_citations", observability_name="verify citations", args=RankArgs)
def verify_citations(ctx: ActionContext, args: RankArgs) -> int:
    return len(args.citations)


@crux.action(name="research.check_sources", observability_name="check sources", args=RankArgs)
def check_sources(ctx: ActionContext, args: RankArgs) -> None:
    """Fails on purpose, so the demo shows a failed boundary and its error evidence."""
    raise LookupError(f"source {args.citations[0]!r} is unreachable (draft {args.draft_id})")


@crux.action(name="research.stream_response", observability_name="stream chat response", args=StreamArgs)
def stream_response(ctx: ActionContext, args: StreamArgs) -> str:
    return f"streamed answer for {args.thread_id}"


@crux.action(name="research.plan", observability_name="plan research", root_primitive="agent.run",
             attributes={"agentId": "research"}, args=PlanArgs)
def plan(ctx: ActionContext, args: PlanArgs) -> Plan:
    inputs = ctx.crux.run_query("load research inputs", load_inputs, args.thread_id)
    ctx.crux.run_action("rank citations", rank_citations,
                        RankArgs(draft_id=args.draft_id, citations=inputs["citations"]))
    ctx.crux.run_action("check sources", check_sources,
                        RankArgs(draft_id=args.draft_id, citations=inputs["sources"]))
    ctx.crux.scheduler.run_after("stream chat response", 0, stream_response, {"thread_id": args.thread_id})
    return Plan(thread_id=args.thread_id, steps=["search", "rank", "write"], sources=len(inputs["sources"]))
