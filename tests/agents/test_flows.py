"""Agent work inside a flow: ``parallel`` made durable by ``scope.step``, and a flow handler's
unexecuted tool requests settled when its execution ends."""

from __future__ import annotations

from tests.agents.helpers import one, settled, starts


def test_parallel_in_a_step_and_unexecuted_tool_calls_in_a_flow(records, agents_app):
    flow = agents_app.agent_flow
    flow_id = flow.start({"topic": "flow"})
    result = flow.result(flow_id, timeout_s=20)
    assert result is not None and result.status == "completed"
    assert result.output == {"asked": "asked", "found": {"x": ["x-1", "x-2"], "y": ["y-1", "y-2"]}}
    settled(records)
    assert records.wait_for(lambda s: any(r["type"] == "span" for r in s.records))
    found = records.records
    step = next(s for s in starts(found, "flow.step") if s["name"] == "fan out")
    composition = one(starts(found, "composition.parallel"))
    assert composition["parentSpanId"] == step["spanId"], "the composition runs inside its durable step"
    skipped = one([r for r in found if r["type"] == "span"])
    assert skipped["toolName"] == "ask_user" and skipped["attributes"]["executed"] is False
    assert skipped["parentSpanId"] == one(starts(found, "generation.call"))["spanId"]
