"""``@crux.tool``: ``tool.call`` spans in-process or across a boundary, error evidence, and the
calls a model requested that nothing executed."""

from __future__ import annotations

import pytest

from cruxcelery import InvalidArgs, Tool
from cruxcelery.errors import CruxError
from tests.agents.helpers import artifacts, end_of, events, one, settled, starts


def test_an_in_process_tool_records_a_tool_call_span_with_its_args_and_result(records, agents_app):
    out = agents_app.tools.delay({"topic": "leases"}).get(timeout=15)
    assert out["found"]["callId"] == "call_l" and out["found"]["runId"]
    found = settled(records)
    tool = one(starts(found, "tool.call"))
    assert (tool["name"], tool["toolName"], tool["family"]) == ("lookup", "lookup", "tool")
    assert tool["attributes"]["toolCallId"] == "call_l"
    assert one(artifacts(found, tool["spanId"], "tool.args"))["preview"] == {"q": "leases", "api_key": None}
    assert one(artifacts(found, tool["spanId"], "tool.result"))["preview"]["hits"] == ["leases-1", "leases-2"]
    # ctx.crux inside the tool records under the tool's span
    assert one(events(found, tool["spanId"], "lookup.searched"))["attributes"] == {"q": "leases"}
    assert end_of(found, tool["spanId"])["status"] == "ok"


def test_a_failing_tool_records_its_phase_and_evidence_and_re_raises(records, agents_app):
    assert agents_app.tools.delay({"mode": "fail", "topic": "leases"}).get(timeout=15) == {"failed": True}
    found = settled(records)
    tool = one(starts(found, "tool.call"))
    end = end_of(found, tool["spanId"])
    assert end["status"] == "error" and end["error"] == {"message": "cannot look up leases", "name": "ValueError"}
    assert end["attributes"] == {"phase": "tool.execute", "errorKind": "execute_error"}
    assert one(events(found, tool["spanId"], "exception"))["attributes"]["exception.type"] == "builtins.ValueError"
    assert {a["kind"] for a in artifacts(found, tool["spanId"])} == {"tool.args", "error.stack", "error.raw"}
    assert "sk-live-abcdefghijklmnop" not in str(found), "a SecretStr argument never reaches a record"


def test_invalid_tool_args_record_the_validate_phase(records, agents_app):
    assert agents_app.tools.delay({"mode": "invalid"}).get(timeout=15) == {"invalid": "InvalidArgs"}
    found = settled(records)
    end = end_of(found, one(starts(found, "tool.call"))["spanId"])
    assert end["status"] == "error" and end["attributes"] == {"phase": "tool.validate", "errorKind": "invalid_args"}


def test_a_task_tool_runs_across_a_boundary_in_the_same_run_and_trace(records, agents_app):
    agents_app.tools.delay({"mode": "remote", "topic": "leases"}).get(timeout=15)
    found = settled(records)
    tool = one(starts(found, "tool.call"))
    assert (tool["toolName"], tool["attributes"]["toolCallId"]) == ("remote_lookup", "call_r")
    assert one(artifacts(found, tool["spanId"], "tool.result"))["preview"] == ["remote leases", "call_r"]
    by_id = {r["spanId"]: r for r in found if r["type"] == "span:start"}
    action = by_id[tool["parentSpanId"]]  # the tool task's action span: folded infrastructure
    boundary = by_id[action["parentSpanId"]]
    assert action["attributes"]["presentation"] == {"display": "detail"}
    assert boundary["primitive"] == "runtime.celery.task" and boundary["name"] == "remote_lookup"
    assert {r["runId"] for r in found} == {tool["runId"]} and {r["traceId"] for r in found} == {tool["traceId"]}
    assert tool["segmentId"] != boundary["segmentId"], "the tool body ran in the child task's segment"


def test_a_requested_tool_call_nothing_executed_is_recorded_executed_false(records, agents_app):
    agents_app.generate.delay({}).get(timeout=15)
    settled(records)
    records.wait_for(lambda s: any(r["type"] == "span" for r in s.records))
    found = records.records
    gen = one(starts(found, "generation.call"))
    skipped = one([r for r in found if r["type"] == "span"])
    assert (skipped["primitive"], skipped["toolName"], skipped["parentSpanId"]) == ("tool.call", "ask_user",
                                                                                    gen["spanId"])
    assert skipped["attributes"]["executed"] is False and skipped["attributes"]["toolCallId"] == "call_2"
    executed = one(starts(found, "tool.call"))  # call_1 ran: it is the lookup span, not an executed:false one
    assert executed["attributes"]["toolCallId"] == "call_1"
    assert end_of(found, gen["spanId"])["attributes"]["toolCallsRequested"] == 2


def test_a_tool_outside_an_action_runs_untraced(agents_app):
    assert agents_app.remote_lookup({"q": "plain"}, call_id="c9") == ["remote plain", "c9"]  # called: in-process
    with pytest.raises(InvalidArgs):
        agents_app.lookup({"nope": 1})


def test_a_tool_describes_itself_for_a_models_tool_list(agents_app):
    definition = agents_app.lookup.definition
    assert definition["type"] == "function"
    assert definition["function"]["name"] == "lookup"
    assert definition["function"]["description"] == "Look a topic up in the local notes."
    assert definition["function"]["parameters"]["required"] == ["q"]
    assert isinstance(agents_app.remote_lookup, Tool) and agents_app.remote_lookup.as_task


def test_celery_options_need_a_task_tool(agents_app):
    with pytest.raises(CruxError):
        agents_app.crux.tool(name="bad", queue="elsewhere")(lambda ctx, args: None)
