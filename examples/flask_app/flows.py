# mypy: disable-error-code="untyped-decorator"
"""The writer flow of the Flask example: plan (a durable child action) -> approval -> write.

Defined by ``define_writer(crux)`` once the extension has built the app's ``Crux``. The write
action reads the Flask config through ``current_app``: tasks run inside the app context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from pydantic import BaseModel, Field

from cruxcelery import ActionContext, Crux, FlowHandle, FlowScope


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


@dataclass(frozen=True)
class Writer:
    flow: FlowHandle[WriterArgs]
    plan_draft: Any
    write_draft: Any


def define_writer(crux: Crux) -> Writer:
    @crux.action(name="flask_example.plan_draft", observability_name="plan draft", root_primitive="agent.run",
                 attributes={"agentId": "planner"}, args=DraftArgs)
    def plan_draft(ctx: ActionContext, args: DraftArgs) -> dict[str, Any]:
        words = [w for w in args.brief.split() if len(w) > 3][:3] or ["intro"]
        return {"outline": ["hook", *[f"section on {w.lower()}" for w in words], "close"]}

    @crux.action(name="flask_example.write_draft", observability_name="write draft", root_primitive="agent.run",
                 attributes={"agentId": "writer"}, args=WriteArgs)
    def write_draft(ctx: ActionContext, args: WriteArgs) -> str:
        body = "\n".join(f"## {part}" for part in args.outline)
        note = f"\n(revised for: {args.feedback})" if args.feedback else ""
        signature = current_app.config["WRITER_SIGNATURE"]  # the worker runs tasks in the app context
        return f"# Draft {args.draft_id}\n{body}{note}\n-- {signature}"

    writer: FlowHandle[WriterArgs] = crux.flow("writer", args=WriterArgs, signals={"approval": Approval})

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

    return Writer(flow=writer, plan_draft=plan_draft, write_draft=write_draft)
