"""The reference app's demo scenario (``cruxcelery demo`` / ``make demo`` runs it against a
real worker): the ``plan research`` action, then the ``research agent`` (a generation against a
deterministic local model, two tools, two parallel branches), which hands its draft to the
``writer`` flow; the scenario approves the draft and the flow finishes. No network, no API key."""

from __future__ import annotations

import time
from typing import Any

from cruxcelery import FlowHandle


def _wait_status(handle: FlowHandle[Any], flow_id: str, status: str, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    current = handle.status(flow_id).status
    while current != status and time.monotonic() < deadline:
        time.sleep(0.05)
        current = handle.status(flow_id).status
    return str(current)


def scenario() -> bool:
    from .agent import research_agent
    from .research import plan

    if __package__ == "tasks":  # the checkout: flows/ beside tasks/ (see tasks/__init__.py)
        from flows.writer import writer
    else:  # the wheel: flows/ inside this package
        from .flows.writer import writer

    started = time.monotonic()
    print("running `plan research` (a root action with child actions, one failing on purpose) ...")
    planned = plan.delay({"thread_id": "demo-thread"}).get(timeout=60)
    print(f"plan research returned in {(time.monotonic() - started) * 1000:.0f} ms: {planned}")

    started = time.monotonic()
    print("running the `research agent` (a local deterministic model, two tools, two parallel branches) ...")
    answer = research_agent.delay({"question": "How do durable flows survive worker restarts?",
                                   "draft_id": "demo-draft"}).get(timeout=60)
    flow_id = answer["flowId"]
    print(f"research agent returned in {(time.monotonic() - started) * 1000:.0f} ms: plan {answer['plan']!r}, "
          f"{len(answer['notes'])} notes; it handed the draft to the writer flow {flow_id}")
    status = _wait_status(writer, flow_id, "suspended")
    print(f"writer {flow_id} is {status} at {writer.status(flow_id).suspended_at!r}; sending the approval")
    writer.signal(flow_id, "approval", {"approved": True, "feedback": "tighten the intro"})
    result = writer.result(flow_id, timeout_s=60)
    print(f"writer finished {result.status if result else 'nothing'} in "
          f"{(time.monotonic() - started) * 1000:.0f} ms:")
    if result is not None and result.status == "completed":
        print("  " + str(result.output["draft"]).replace("\n", "\n  "))
    return bool(planned.get("sources") == 3 and len(answer["notes"]) == 3 and result is not None
                and result.status == "completed")
