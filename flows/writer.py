"""``writer``: plan (a durable child action) -> approval (a typed suspend, 24 h) -> write."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cruxcelery import ActionContext, FlowScope

if __package__ == "flows":  # the checkout: tasks/ beside flows/ (see tasks/__init__.py)
    from tasks import crux
    from tasks.writing import plan_draft, write_draft
else:  # the wheel: this package inside the app's (tasks/ as cruxcelery.examples)
    from .. import crux
    from ..writing import plan_draft, write_draft


class WriterArgs(BaseModel):
    draft_id: str
    brief: str


class Approval(BaseModel):
    approved: bool
    feedback: str = ""


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
