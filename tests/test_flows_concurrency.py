"""One execution per flow at a time; duplicate resumes are harmless; many flows at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from cruxcelery import FlowCompleted, cancel_flow, list_flows
from tests.app_flows import count, counting, resumable
from tests.flowhelpers import wait_status


def test_twenty_resume_tasks_at_once_run_the_code_after_the_suspend_once(worker):
    flow_id = resumable.start({"label": "crowd"})
    wait_status(resumable, flow_id, "suspended")
    resumable.signal(flow_id, "go", {"topic": "crowd"})
    for _ in range(20):
        resumable.task.apply_async(kwargs={"flow_id": flow_id, "reason": "signal"})
    assert resumable.result(flow_id, timeout_s=20) == FlowCompleted(flow_id=flow_id, output="crowd")
    assert count(flow_id, "after-go") == 1


def test_two_hundred_flows_signalled_concurrently_all_complete(worker):
    flow_ids = [resumable.start({"label": f"many-{i}"}) for i in range(200)]
    for flow_id in flow_ids:
        wait_status(resumable, flow_id, "suspended", timeout_s=60)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda f: resumable.signal(f, "go", {"topic": f}), flow_ids))
    results = [resumable.result(f, timeout_s=60) for f in flow_ids]
    assert all(isinstance(r, FlowCompleted) and r.output == r.flow_id for r in results)


def test_cancel_flow_cancels_a_suspended_flow_and_a_pending_resume_then_does_nothing(worker):
    flow_id = resumable.start({"label": "cancel"})
    wait_status(resumable, flow_id, "suspended")
    assert cancel_flow(flow_id, "not needed").status == "cancelled"
    resumable.task.apply_async(kwargs={"flow_id": flow_id, "reason": "signal"}).get(timeout=10)
    assert resumable.status(flow_id).status == "cancelled"
    assert count(flow_id, "after-go") == 0


def test_cancel_flow_is_a_no_op_on_a_completed_flow(worker):
    flow_id = resumable.start({"label": "done"})
    resumable.signal(flow_id, "go", {"topic": "done"})
    wait_status(resumable, flow_id, "completed")
    assert cancel_flow(flow_id, "too late").status == "completed"


def test_list_flows_pages_by_status_and_by_name(worker):
    flow_ids = {counting.start({"label": f"page-{i}"}) for i in range(7)}
    for flow_id in flow_ids:
        wait_status(counting, flow_id, "suspended")
    seen, cursor = [], None
    while True:
        page, cursor = list_flows(status="suspended", name="t-counting", limit=3, cursor=cursor)
        assert len(page) <= 3
        seen += [s.flow_id for s in page]
        if cursor is None:
            break
    assert flow_ids <= set(seen) and len(seen) == len(set(seen))
    by_name, _ = list_flows(name="t-counting", limit=1000)
    assert flow_ids <= {s.flow_id for s in by_name}
    assert all(s.name == "t-counting" for s in by_name)
