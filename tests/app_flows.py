"""Flows the suite drives with the in-thread worker (imported by tests.app)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cruxcelery import ActionContext, FlowScope, Retry
from tests.app import REDIS, Topic, crux, fails, leaf
from tests.counters import Counters

_counters = Counters(REDIS)
counters, bump, count = _counters.redis, _counters.bump, _counters.count


class WriterArgs(BaseModel):
    draft_id: str
    timeout_s: float = 3600.0


class Approval(BaseModel):
    approved: bool
    feedback: str = ""


writer = crux.flow("t-writer", args=WriterArgs, signals={"approval": Approval})


@writer.handler
def run_writer(scope: FlowScope[WriterArgs], args: WriterArgs, ctx: ActionContext) -> dict[str, Any]:
    plan = scope.step("plan", lambda: ctx.crux.run_action("plan draft", leaf, {"topic": args.draft_id}))
    approval = scope.suspend("approval", timeout=args.timeout_s,
                             on_expired=lambda snap: bump(snap.flow_id, "expired"))
    if not approval.approved:
        scope.cancel(f"rejected: {approval.feedback}")
    bump(scope.flow_id, "after-approval")
    written = scope.step("write", lambda: {"draft": args.draft_id, "plan": plan["topic"],
                                           "feedback": approval.feedback})
    return {"written": written}


class Plain(BaseModel):
    label: str = "x"
    fail_times: int = 0


counting = crux.flow("t-counting", args=Plain)


@counting.handler
def run_counting(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> int:
    scope.step("count", lambda: bump(scope.flow_id, "count"))
    for name in ("a", "b", "c"):
        scope.suspend(name)
    return count(scope.flow_id, "count")


retrying_flow = crux.flow("t-retrying", args=Plain)


def _flaky(flow_id: str, fail_times: int) -> str:
    if bump(flow_id, "flaky") <= fail_times:
        raise RuntimeError("flaky step failed")
    return "flaky ok"


@retrying_flow.handler
def run_retrying(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> dict[str, Any]:
    flaky = scope.step("flaky", lambda: _flaky(scope.flow_id, args.fail_times),
                       retry=Retry(attempts=3, delay_s=0.05))
    doomed = scope.step("doomed", lambda: ctx.crux.run_action("always fails", fails, {"topic": "t"}),
                        retry=Retry(attempts=2, delay_s=0.05, backoff="linear"),
                        fallback=lambda: "fallback used")
    return {"flaky": flaky, "doomed": doomed}


duplicate = crux.flow("t-duplicate", args=Plain)


@duplicate.handler
def run_duplicate(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> None:
    scope.step("same", lambda: 1)
    scope.step("same", lambda: 2)


reordering = crux.flow("t-reordering", args=Plain)


@reordering.handler
def run_reordering(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> None:
    order = ["first", "second"] if count(scope.flow_id, "swapped") == 0 else ["second", "first"]
    for label in order:
        scope.step(label, lambda value=label: value)
    scope.suspend("go")


resumable = crux.flow("t-resumable", args=Plain, signals={"go": Topic})


@resumable.handler
def run_resumable(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> str:
    go = scope.suspend("go")
    bump(scope.flow_id, "after-go")
    return go.topic


class ChildArgs(BaseModel):
    parent_label: str


child_flow = crux.flow("t-child", args=ChildArgs)


@child_flow.handler
def run_child(scope: FlowScope[ChildArgs], args: ChildArgs, ctx: ActionContext) -> str:
    return scope.step("child-work", lambda: f"child of {args.parent_label}")


parent_flow = crux.flow("t-parent", args=Plain)


@parent_flow.handler
def run_parent(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> Any:
    child_id = scope.step("start child", lambda: child_flow.start({"parent_label": args.label}))
    scope.wait_until("child done", lambda: child_flow.status(child_id).status == "completed", every=0.5)
    return child_flow.result(child_id).output  # type: ignore[union-attr]


# -- durability regressions -------------------------------------------------------------------------

from tests.app import big, flaky_auto  # noqa: E402

big_flow = crux.flow("t-big", args=Plain)


@big_flow.handler
def run_big(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> Any:
    return scope.step("big", lambda: ctx.crux.run_action("big child", big, {"topic": args.label}))


flaky_child_flow = crux.flow("t-flaky-child", args=Plain)


@flaky_child_flow.handler
def run_flaky_child(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> Any:
    return scope.step("flaky", lambda: ctx.crux.run_action(
        "flaky child", flaky_auto, {"topic": scope.flow_id, "depth": args.fail_times}))


rescued = crux.flow("t-rescued", args=Plain)


@rescued.handler
def run_rescued(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> Any:
    return scope.step("doomed", lambda: ctx.crux.run_action("always fails", fails, {"topic": "t"}),
                      fallback=lambda: ctx.crux.run_action("rescue", leaf, {"topic": "rescued"}))


polling = crux.flow("t-polling", args=Plain)


@polling.handler
def run_polling(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> None:
    scope.wait_until("never", lambda: bump(scope.flow_id, "polled") < 0, every=0.3)


schema_only = crux.flow("t-schema-only", args=Plain)


@schema_only.handler
def run_schema_only(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> bool:
    return bool(scope.suspend("approval", schema=Approval).approved)


class Steps:
    def __init__(self, flow_id: str) -> None:
        self.flow_id = flow_id

    def with_scope(self, scope: FlowScope[Plain]) -> str:
        return f"method saw {scope.flow_id == self.flow_id}"


method_steps = crux.flow("t-method-steps", args=Plain)


@method_steps.handler
def run_method_steps(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> str:
    return scope.step("method", Steps(scope.flow_id).with_scope)


outside = crux.flow("t-outside", args=Plain)


@outside.handler
def run_outside(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> None:
    ctx.crux.run_action("outside any step", leaf, {"topic": "outside"})
    scope.suspend("go")


parked_child = crux.flow("t-parked-child", args=Plain)


@parked_child.handler
def run_parked_child(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> Any:
    """Its durable child is published to the queue ``args.label``, which no worker consumes: the
    test releases it (``tests.parking``) when it wants the child to run."""
    return scope.step("child", lambda: ctx.crux.run_action("parked child", leaf, {"topic": "legit"},
                                                           queue=args.label))


@crux.action(name="t.counted", observability_name="counted", args=Topic)
def counted(ctx: ActionContext, args: Topic) -> dict[str, Any]:
    """Counts its runs under ``args.topic``."""
    return {"topic": args.topic, "runs": bump(args.topic, "counted")}


parked_counted = crux.flow("t-parked-counted", args=Plain)


@parked_counted.handler
def run_parked_counted(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> Any:
    """Like ``parked_child``, with a child that counts its runs under the flow's id."""
    return scope.step("child", lambda: ctx.crux.run_action("counted child", counted, {"topic": scope.flow_id},
                                                           queue=args.label))


@crux.app.task(name="t.plain_counted")
def plain_counted(key: str) -> int:
    """A plain Celery task that counts its runs under ``key``."""
    return bump(key, "plain")


parked_plain = crux.flow("t-parked-plain", args=Plain)


@parked_plain.handler
def run_parked_plain(scope: FlowScope[Plain], args: Plain, ctx: ActionContext) -> Any:
    """Its durable child is a plain Celery task, parked like ``parked_child``'s."""
    return scope.step("child", lambda: ctx.crux.run_action("plain counted", plain_counted, {"key": scope.flow_id},
                                                           queue=args.label))
