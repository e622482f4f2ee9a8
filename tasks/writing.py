"""Actions the reference flows call as durable child steps."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cruxcelery import ActionContext

from . import crux


class DraftArgs(BaseModel):
    draft_id: str = Field(min_length=1, max_length=128)
    brief: str = Field(min_length=1, max_length=10_000)


class DraftPlan(BaseModel):
    draft_id: str
    outline: list[str]


class WriteArgs(BaseModel):
    draft_id: str
    outline: list[str]
    feedback: str = ""


class SourceArgs(BaseModel):
    source: str = Field(min_length=1, max_length=500)


@crux.action(name="writing.plan_draft", observability_name="plan draft", root_primitive="agent.run",
             attributes={"agentId": "planner"}, args=DraftArgs)
def plan_draft(ctx: ActionContext, args: DraftArgs) -> DraftPlan:
    words = [w for w in args.brief.split() if len(w) > 3][:3] or ["intro"]
    outline = ["hook", *[f"section on {w.lower()}" for w in words], "close"]
    return DraftPlan(draft_id=args.draft_id, outline=outline)


@crux.action(name="writing.write_draft", observability_name="write draft", root_primitive="agent.run",
             attributes={"agentId": "writer"}, args=WriteArgs)
def write_draft(ctx: ActionContext, args: WriteArgs) -> str:
    body = "\n".join(f"## {part}" for part in args.outline)
    note = f"\n(revised for: {args.feedback})" if args.feedback else ""
    return f"# Draft {args.draft_id}\n{body}{note}"


@crux.action(name="writing.summarize_source", observability_name="summarize source", args=SourceArgs)
def summarize_source(ctx: ActionContext, args: SourceArgs) -> str:
    return f"summary of {args.source}"
