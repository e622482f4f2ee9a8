"""``cruxcelery flows ...`` without a worker: state is driven through the public API (``start``
leaves a flow pending, ``run_inline`` runs it to its suspend, ``cancel``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cruxcelery import create_flow_id
from tests.cli import cli_app
from tests.cli.down_app import dead_port

REPO = Path(__file__).resolve().parents[2]


def suspended(draft_id: str = "d1") -> str:
    """A flow run inline up to its suspend on ``approval``."""
    flow_id = create_flow_id()
    cli_app.review.run_inline({"draft_id": draft_id}, flow_id=flow_id)
    assert cli_app.review.status(flow_id).status == "suspended"
    return flow_id


# -- list ---------------------------------------------------------------------------------------------
def test_list_filters_pages_and_json(cli: Any) -> None:
    assert "no flows" in cli("flows", "list").out
    pending = [cli_app.review.start({"draft_id": f"p{i}"}) for i in range(3)]
    held = suspended("s1")

    out = cli("flows", "list").out
    assert all(flow_id in out for flow_id in [*pending, held])
    assert out.splitlines()[0].split() == ["FLOW_ID", "NAME", "STATUS", "UPDATED", "AT"]
    only = cli("flows", "list", "--status", "suspended").out
    assert held in only and not any(flow_id in only for flow_id in pending)
    assert "approval" in only  # what it is suspended at
    assert "no flows matching" in cli("flows", "list", "--name", "other-flow").out

    first = cli("flows", "list", "--limit", "2", "--json")
    page = json.loads(first.out)
    assert len(page["flows"]) == 2 and page["next_cursor"]
    rest = json.loads(cli("flows", "list", "--limit", "2", "--json", "--cursor", page["next_cursor"]).out)
    seen = [f["flow_id"] for f in page["flows"] + rest["flows"]]
    assert sorted(seen) == sorted([*pending, held]) and rest["next_cursor"] is None
    text = cli("flows", "list", "--limit", "2").out
    assert f"more: cruxcelery flows list --cursor {page['next_cursor']} --limit 2" in text


def test_list_usage_errors(cli: Any) -> None:
    bad_cursor = cli("flows", "list", "--cursor", "not-a-cursor")
    assert bad_cursor.code == 2 and "invalid list_flows cursor" in bad_cursor.err
    assert "cruxcelery flows list" in bad_cursor.err
    limit = cli("flows", "list", "--limit", "0")
    assert limit.code == 2 and "--limit must be between 1 and 1000" in limit.err
    with pytest.raises(SystemExit) as usage:
        cli("flows", "list", "--status", "sleeping")
    assert usage.value.code == 2


# -- show ---------------------------------------------------------------------------------------------
def test_show_a_suspended_flow(cli: Any) -> None:
    flow_id = suspended("draft-7")
    result = cli("flows", "show", flow_id)
    assert result.code == 0, result.err
    out = result.out
    assert f"flow {flow_id} (cli-review): suspended" in out
    assert '"draft_id": "draft-7"' in out  # the input
    assert "1. plan:" in out and "ms, 1 attempt," in out and '"draft": "draft-7"' in out
    assert "waiting for: the signal 'approval', times out" in out
    assert '"approved"' in out and '"boolean"' in out  # the schema
    assert f"send it with: cruxcelery flows signal {flow_id} approval" in out
    assert "run: " in out  # the flow's run id, to find it in devtools

    as_json = json.loads(cli("flows", "show", flow_id, "--json").out)
    assert as_json["status"] == "suspended" and as_json["waiting"]["schema"]["title"] == "Approval"
    assert list(as_json["completed_steps"]) == ["plan"]


def test_show_rejected_signals_and_an_error(cli: Any) -> None:
    flow_id = suspended()
    store = cli_app.crux.flows.store
    snap = store.snapshots.require(flow_id)
    rejected = {"name": "approval", "payload": {"approved": "maybe"}, "message": "bad",
                "errors": [{"loc": ["approved"], "msg": "Input should be a valid boolean"}], "at": "2024-01-01"}
    from cruxcelery.flows.snapshot import ErrorInfo

    failed = snap.model_copy(update={"status": "failed", "waiting": None, "rejected_signals": [rejected],
                                     "error": ErrorInfo(message="the CMS refused", name="StepFailed")})
    store.snapshots.save(failed, snap.version)
    out = cli("flows", "show", flow_id).out
    assert "rejected signals:" in out and '"approved": "maybe"' in out
    assert "approved: Input should be a valid boolean" in out
    assert "error: StepFailed: the CMS refused" in out
    assert "no traceback stored" in out or "traceback:" in out
    assert f"cruxcelery flows retry {flow_id}" in out


def test_unknown_and_invalid_flow_ids(cli: Any) -> None:
    for command in (("show",), ("cancel",), ("retry",), ("signal", "flow_nope", "approval")):
        args = ("flows", *command) if command[0] == "signal" else ("flows", *command, "flow_nope")
        result = cli(*args)
        assert result.code == 1, (command, result)
        assert "no flow 'flow_nope'" in result.err and "cruxcelery flows list" in result.err
    invalid = cli("flows", "show", "bad id!")
    assert invalid.code == 2 and "invalid flow id" in invalid.err


# -- signal -------------------------------------------------------------------------------------------
def test_signal_errors_say_what_to_do(cli: Any) -> None:
    flow_id = suspended()
    not_json = cli("flows", "signal", flow_id, "approval", "{approved: yes}")
    assert not_json.code == 2
    assert "PAYLOAD_JSON is not JSON" in not_json.err and "'{\"approved\": true}'" in not_json.err

    refused = cli("flows", "signal", flow_id, "approval", '{"approved": "perhaps"}')
    assert refused.code == 1
    assert "signal refused" in refused.err and "approved: Input should be a valid boolean" in refused.err
    assert "Fix the payload" in refused.err

    undeclared = cli("flows", "signal", flow_id, "rejection", "{}")
    assert undeclared.code == 1 and "declares no signal 'rejection'" in undeclared.err
    assert cli_app.crux.flows.store.signals.pending_count(flow_id, "approval") == 0


def test_signal_stores_once_per_signal_id(cli: Any) -> None:
    flow_id = suspended()
    for _ in range(2):
        sent = cli("flows", "signal", flow_id, "approval", '{"approved": true}', "--signal-id", "sig-1")
        assert sent.code == 0, sent.err
        assert f"signal 'approval' stored for flow {flow_id}" in sent.out
    assert cli_app.crux.flows.store.signals.pending_count(flow_id, "approval") == 1


def test_signal_to_a_finished_flow(cli: Any) -> None:
    flow_id = suspended()
    cli_app.review.cancel(flow_id)
    result = cli("flows", "signal", flow_id, "approval", '{"approved": true}')
    assert result.code == 1 and "cancelled" in result.err and "cruxcelery flows show" in result.err


# -- cancel, retry, delete, purge ---------------------------------------------------------------------
def test_cancel_then_cancel_again(cli: Any) -> None:
    flow_id = suspended()
    first = cli("flows", "cancel", flow_id, "--reason", "not needed")
    assert first.code == 0 and f"flow {flow_id} cancelled" in first.out
    assert cli_app.review.snapshot(flow_id).cancel_reason == "not needed"
    again = cli("flows", "cancel", flow_id)
    assert again.code == 0 and "already cancelled; nothing to cancel" in again.out


def test_retry_refuses_a_flow_that_did_not_fail(cli: Any) -> None:
    flow_id = suspended()
    live = cli("flows", "retry", flow_id)
    assert live.code == 1
    assert "is suspended; only a failed flow can be retried; cancel it first" in live.err
    cli_app.review.cancel(flow_id)
    done = cli("flows", "retry", flow_id)
    assert done.code == 1 and "is cancelled" in done.err and "start a new flow instead" in done.err
    assert cli_app.review.status(flow_id).status == "cancelled"


def test_retry_writes_without_a_worker(cli: Any) -> None:
    """A failed (and retired) flow: pending again, its keys kept, old child outcomes dropped, its
    dispatch in the lease index and on the queue."""
    flows = cli_app.crux.flows
    store, keys = flows.store, flows.store.keys
    flow_id = suspended()
    snap = store.snapshots.require(flow_id)
    from cruxcelery.flows.snapshot import ErrorInfo

    failed = store.snapshots.save(snap.model_copy(update={"status": "failed", "waiting": None,
                                                "error": ErrorInfo(message="boom", name="StepFailed")}),
                        snap.version)
    store.children.put(flow_id, "publish.1", {"ok": False, "error": {"message": "refused"}})
    flows.retire(failed, cli_app.review)
    assert store.redis.ttl(keys.flow(flow_id)) > 0

    result = cli("flows", "retry", flow_id)
    assert result.code == 0, result.err
    again = store.snapshots.require(flow_id)
    assert again.status == "pending" and again.error is None and list(again.completed_steps) == ["plan"]
    assert store.redis.ttl(keys.flow(flow_id)) == -1
    assert store.children.get(flow_id, "publish.1") is None
    assert store.redis.zscore(keys.leases(), flow_id) is not None
    assert store.redis.llen(cli_app.QUEUE) >= 1  # the flow's task, published
    assert [f.flow_id for f in flows.list_flows(status="pending")[0]] == [flow_id]


def test_delete_and_purge(cli: Any) -> None:
    kept = suspended("keep")
    doomed = [suspended(f"x{i}") for i in range(3)]
    for flow_id in doomed:
        cli_app.review.cancel(flow_id)

    deleted = cli("flows", "delete", doomed[0])
    assert deleted.code == 0 and f"flow {doomed[0]} deleted" in deleted.out
    gone = cli("flows", "delete", doomed[0])
    assert gone.code == 1 and "no flow" in gone.err and "cruxcelery flows list" in gone.err

    assert "deleted 0 cancelled flows not updated for 3600 s" in cli(
        "flows", "purge", "--status", "cancelled", "--older-than", "3600").out
    assert "deleted 2 finished flows" in cli("flows", "purge").out
    assert cli_app.review.status(kept).status == "suspended"
    assert [f.flow_id for f in cli_app.crux.flows.list_flows()[0]] == [kept]
    negative = cli("flows", "purge", "--older-than", "-1")
    assert negative.code == 2


# -- the app and Redis --------------------------------------------------------------------------------
def test_app_module_errors(cli: Any) -> None:
    missing = cli("flows", "list", app="tests.cli.no_such_module")
    assert missing.code == 2 and "cannot import the app module" in missing.err and "--app MODULE" in missing.err
    no_crux = cli("flows", "list", app="tests.cli")
    assert no_crux.code == 2 and "builds no Crux" in no_crux.err
    by_attribute = cli("flows", "list", app="tests.cli.cli_app:app")
    assert by_attribute.code == 0


def test_app_from_crux_app_env(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUX_APP", "tests.cli.cli_app")
    assert cli("flows", "list", app=None).code == 0


def test_unreachable_redis(cli: Any) -> None:
    result = cli("flows", "list", app="tests.cli.down_app")
    assert result.code == 1
    assert "the flow store (Redis) does not answer" in result.err
    assert "Start Redis or fix CRUX_REDIS_URL" in result.err
    shown = cli("flows", "show", "flow_x", app="tests.cli.down_app")
    assert shown.code == 1 and "does not answer" in shown.err


def test_a_real_subprocess_with_redis_down() -> None:
    env = {**os.environ, "CRUX_REDIS_URL": f"redis://127.0.0.1:{dead_port()}/0", "CRUX_REDIS_TIMEOUT_S": "1"}
    done = subprocess.run([sys.executable, "-m", "cruxcelery.cli", "flows", "list", "--app", "tests.cli.cli_app"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    assert "cruxcelery flows list: the flow store (Redis) does not answer" in done.stderr
    assert "Traceback" not in done.stderr
