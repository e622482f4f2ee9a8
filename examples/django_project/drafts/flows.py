"""The writer flow: plan (a durable child action) -> approval -> write. Imported by
``cruxcelery.integrations.django`` when Django is ready, in the web process and the worker."""

from typing import Any

from django.conf import settings
from pydantic import BaseModel, Field

from cruxcelery import ActionContext, FlowScope
from cruxcelery.integrations.django import get_crux

crux = get_crux()


class WriterArgs(BaseModel):
    draft_id: str = Field(min_length=1, max_length=128)
    tenant: str = Field(min_length=1, max_length=128)
    brief: str = Field(min_length=1, max_length=10_000)


class Approval(BaseModel):
    approved: bool
    feedback: str = Field(default="", max_length=2_000)


class DraftArgs(BaseModel):
    draft_id: str
    brief: str


class WriteArgs(BaseModel):
    draft_id: str
    outline: list[str]
    feedback: str = ""


@crux.action(name="django_example.plan_draft", observability_name="plan draft", root_primitive="agent.run",
             attributes={"agentId": "planner"}, args=DraftArgs)
def plan_draft(ctx: ActionContext, args: DraftArgs) -> dict[str, Any]:
    words = [w for w in args.brief.split() if len(w) > 3][:3] or ["intro"]
    return {"outline": ["hook", *[f"section on {w.lower()}" for w in words], "close"]}


@crux.action(name="django_example.write_draft", observability_name="write draft", root_primitive="agent.run",
             attributes={"agentId": "writer"}, args=WriteArgs)
def write_draft(ctx: ActionContext, args: WriteArgs) -> str:
    body = "\n".join(f"## {part}" for part in args.outline)
    note = f"\n(revised for: {args.feedback})" if args.feedback else ""
    return f"# Draft {args.draft_id}\n{body}{note}\n-- {settings.WRITER_SIGNATURE}"


writer = crux.flow("writer", args=WriterArgs, signals={"approval": Approval})


@writer.handler
def run_writer(scope: FlowScope[WriterArgs], args: WriterArgs, ctx: ActionContext) -> dict[str, Any]:
    plan = scope.step("plan", lambda: ctx.crux.run_action(
        "plan draft", plan_draft, {"draft_id": args.draft_id, "brief": args.brief}))
    approval: Approval = scope.suspend("approval", timeout="24h")
    if not approval.approved:
        scope.cancel(f"rejected by reviewer: {approval.feedback}" if approval.feedback else "rejected by reviewer")
    draft = scope.step("write", lambda: ctx.crux.run_action(
        "write draft", write_draft,
        {"draft_id": args.draft_id, "outline": plan["outline"], "feedback": approval.feedback}))
    return {"draftId": args.draft_id, "draft": draft}
