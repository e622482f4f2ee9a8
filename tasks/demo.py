"""The reference app's demo scenario (``cruxcelery demo`` / ``make demo`` runs it against a
real worker): the ``plan research`` action, then the ``research agent`` (a generation against a
deterministic local model, two tools, two parallel branches), which hands its draft to the
``writer`` flow; the scenario approves the draft and the flow finishes."""

from __future__ import annotations

import time


def _wait_status(handle: object, flow_id: str, status: str, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    current = handle.status(flow_id).status  # type: ignore[attr-defined]
    while current != status and time.monotonic() < deadline:
        time.sleep(0.05)
        current = handle.status(flow_id).status  # type: ignore[attr-defined]
    return str(current)


def scenario() -> bool:
    from flows.writer import writer
    from tasks.agent import research_agent
    from tasks.research import plan

    started = time.monotonic()
    planned = plan.delay({"thread_id": "demo-thread"}).get(timeout=60)
    print(f"plan research returned in {(time.monotonic() - started) * 1000:.0f} ms: {planned}")

    started = time.monotonic()
    answer = research_agent.delay({"question": "How do durable flows survive worker restarts?",
                                   "draft_id": "demo-draft"}).get(timeout=60)
    print(f"research agent returned in {(time.monotonic() - started) * 1000:.0f} ms: plan {answer['plan']!r}, "
          f"{len(answer['notes'])} notes, handed off to the writer flow {answer['flowId']}")
    flow_id = answer["flowId"]
    status = _wait_status(writer, flow_id, "suspended")
    print(f"writer {flow_id} is {status} at {writer.status(flow_id).suspended_at!r}; sending the approval")
    writer.signal(flow_id, "approval", {"approved": True, "feedback": "tighten the intro"})
    result = writer.result(flow_id, timeout_s=60)
    print(f"writer finished {result.status if result else 'nothing'} in "
          f"{(time.monotonic() - started) * 1000:.0f} ms:")
    if result is not None and result.status == "completed":
        print("  " + str(result.output["draft"]).replace("\n", "\n  "))
    return (planned.get("sources") == 3 and len(answer["notes"]) == 3 and result is not None
            and result.status == "completed")
