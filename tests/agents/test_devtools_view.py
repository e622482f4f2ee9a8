"""Devtools shows an agent run's tools and generations with readable labels and token counts."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cruxcelery.devtools.api import DevtoolsConfig
from cruxcelery.devtools.server import DevtoolsServer
from tests.agents.helpers import settled


@pytest.fixture()
def api() -> Iterator[httpx.Client]:
    with DevtoolsServer(DevtoolsConfig(db=":memory:")) as server, \
            httpx.Client(base_url=server.url, timeout=10.0) as client:
        yield client


def test_the_run_detail_labels_tools_and_generations_with_their_model_and_tokens(records, agents_app, api):
    agents_app.generate.delay({}).get(timeout=15)
    settled(records)
    records.wait_for(lambda s: any(r["type"] == "span" for r in s.records))
    found = records.records
    posted = api.post("/api/observability/records", json={"schemaVersion": 5, "records": found})
    assert posted.status_code == 202 and all(d["outcome"] == "accepted" for d in posted.json()["dispositions"])
    detail = api.get(f"/api/runs/{found[0]['runId']}").json()
    spans = {s["name"]: s for s in detail["spans"]}
    chat = spans["chat local-1"]
    assert (chat["model"], chat["provider"], chat["status"]) == ("local-1", "local", "ok")
    assert chat["metrics"] == {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19, "costUsd": 0.0001}
    assert chat["endAttributes"]["finishReasons"] == ["tool_calls"]
    assert spans["lookup"]["toolName"] == "lookup" and spans["lookup"]["attributes"]["toolCallId"] == "call_1"
    skipped = spans["ask_user"]
    assert skipped["parentSpanId"] == chat["spanId"] and skipped["attributes"]["executed"] is False
    assert skipped["status"] == "ok"
