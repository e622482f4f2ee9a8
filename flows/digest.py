"""``digest``: one child flow per source (each a durable ``summarize source`` step), then
``wait_until`` every child completed; the result joins their outputs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cruxcelery import ActionContext, FlowScope

if __package__ == "flows":  # the checkout: tasks/ beside flows/ (see tasks/__init__.py)
    from tasks import crux
    from tasks.writing import summarize_source
else:  # the wheel: this package inside the app's (tasks/ as cruxcelery.examples)
    from .. import crux
    from ..writing import summarize_source


class DigestArgs(BaseModel):
    sources: list[str] = Field(min_length=1, max_length=20)


class SourceArgs(BaseModel):
    source: str


summary = crux.flow("digest-source", args=SourceArgs)


@summary.handler
def run_summary(scope: FlowScope[SourceArgs], args: SourceArgs, ctx: ActionContext) -> str:
    return str(scope.step("summarize", lambda: ctx.crux.run_action(
        "summarize source", summarize_source, {"source": args.source})))


digest = crux.flow("digest", args=DigestArgs)


def _all_completed(child_ids: list[str]) -> bool:
    return all(summary.status(child).status == "completed" for child in child_ids)


@digest.handler
def run_digest(scope: FlowScope[DigestArgs], args: DigestArgs, ctx: ActionContext) -> list[str]:
    child_ids: list[str] = scope.step("start summaries", lambda: [
        summary.start({"source": source}, idempotency_key=f"{scope.flow_id}.{index}")
        for index, source in enumerate(args.sources)])
    scope.wait_until("summaries done", lambda: _all_completed(child_ids), every="2s", timeout="1h")
    return [str(summary.result(child).output) for child in child_ids]  # type: ignore[union-attr]
