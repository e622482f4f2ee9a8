"""Durable flows under the faults found in ordinary deployments (issue 7): each test names the
behaviour that used to break."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
import redis

from cruxcelery import (
    ConfigurationError,
    CruxSettings,
    FlowCompleted,
    SignalRejected,
    StoreUnavailable,
    delete_flow,
    purge_flows,
    signal_flow,
)
from tests.app import crux
from tests.app_flows import (
    big_flow,
    counting,
    method_steps,
    outside,
    polling,
    rescued,
    resumable,
    schema_only,
)
from tests.celery_apps import json_app
from tests.flowhelpers import wait_status


def test_a_durable_childs_result_is_stored_losslessly(worker):
    flow_id = big_flow.start({"label": "big"})

    output = big_flow.result(flow_id, timeout_s=20).output

    assert output["items"] == list(range(500))
    assert output["text"] == "x" * 70_000
    deep = output["deep"]
    for _ in range(12):
        deep = deep["down"]
    assert deep == "bottom"


def test_a_fallback_after_a_failed_durable_child_runs_its_own_child(worker):
    flow_id = rescued.start({})

    result = rescued.result(flow_id, timeout_s=20)

    assert isinstance(result, FlowCompleted) and result.output["topic"] == "rescued"


def test_extra_resumes_of_a_polling_flow_leave_one_recheck_timer(worker):
    flow_id = polling.start({})
    wait_status(polling, flow_id, "suspended")
    flows = crux.flows
    for _ in range(5):
        flows.resume(flow_id, "extra")
    time.sleep(1.5)  # the extra resumes and a few re-checks run

    members = flows.store.redis.smembers(flows.store.keys.flow_timers(flow_id))
    assert len(members) == 1, members
    polled = int(flows.store.redis.get(f"crux-test:count:{flow_id}:polled") or 0)
    time.sleep(1.2)
    polled_later = int(flows.store.redis.get(f"crux-test:count:{flow_id}:polled") or 0)
    assert polled_later - polled <= 6, "one re-check chain every 0.3 s, not one per resume"
    polling.cancel(flow_id)


def test_a_signal_is_validated_by_the_schema_the_waiting_flow_recorded(worker):
    flow_id = schema_only.start({})
    wait_status(schema_only, flow_id, "suspended")

    with pytest.raises(SignalRejected) as refused:
        schema_only.signal(flow_id, "approval", {"approved": "not a bool"})

    assert refused.value.errors and refused.value.errors[0]["loc"] == ["approved"]
    assert schema_only.status(flow_id).status == "suspended"
    schema_only.signal(flow_id, "approval", {"approved": True})
    assert schema_only.result(flow_id, timeout_s=15).output is True


def test_a_signal_name_the_flow_does_not_declare_is_refused_at_the_caller(worker):
    flow_id = resumable.start({})
    with pytest.raises(SignalRejected, match="declares no signal 'goo'"):
        resumable.signal(flow_id, "goo", {"topic": "typo"})
    store = crux.flows.store
    assert store.signals.pending_count(flow_id, "goo") == 0
    resumable.cancel(flow_id)


def test_a_retried_signal_with_the_same_signal_id_is_stored_once(worker):
    flow_id = counting.start({})
    wait_status(counting, flow_id, "suspended")  # at "a": a signal for "b" stays buffered

    counting.signal(flow_id, "b", None, signal_id="click-1")
    counting.signal(flow_id, "b", None, signal_id="click-1")

    assert crux.flows.store.signals.pending_count(flow_id, "b") == 1
    counting.cancel(flow_id)


def test_a_bound_method_step_receives_the_scope(worker):
    flow_id = method_steps.start({})
    assert method_steps.result(flow_id, timeout_s=15).output == "method saw True"


def test_run_action_outside_a_step_warns_once(worker, caplog):
    with caplog.at_level(logging.WARNING, logger="cruxcelery.flows"):
        flow_id = outside.start({})
        wait_status(outside, flow_id, "suspended")
    warnings = [r for r in caplog.records if "outside a step" in r.getMessage()]
    assert len(warnings) == 1
    outside.cancel(flow_id)


def test_a_finished_flow_leaves_no_signals_or_timers_and_its_keys_expire(worker):
    flow_id = resumable.start({})
    resumable.signal(flow_id, "go", {"topic": "done"})
    resumable.result(flow_id, timeout_s=15)
    store = crux.flows.store
    assert not store.redis.exists(store.keys.signal(flow_id, "go"))
    assert not store.redis.exists(store.keys.flow_timers(flow_id))
    ttl = store.redis.pttl(store.keys.flow(flow_id))
    assert 0 < ttl <= 7 * 86_400_000


def test_delete_flow_and_purge_flows_remove_every_key(worker):
    first = resumable.start({})
    second = resumable.start({})
    for flow_id in (first, second):
        resumable.signal(flow_id, "go", {"topic": "x"})
        resumable.result(flow_id, timeout_s=15)
    store = crux.flows.store

    assert delete_flow(first) is True and delete_flow(first) is False
    assert not store.redis.exists(store.keys.flow(first), store.keys.delivered(first))
    assert purge_flows(status="completed", older_than_s=0) >= 1
    assert not store.redis.exists(store.keys.flow(second))


def test_calls_while_redis_is_down_raise_store_unavailable_within_the_timeout(make_crux):
    app = json_app("crux_down", "redis://127.0.0.1:1/0", "crux-down")
    crux = make_crux(app, CruxSettings(redis_url="redis://127.0.0.1:1/0", redis_timeout_s=0.5, key_prefix="crux-down"))
    handle = crux.flow("down", args=_Args)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as down:
        handle.status("flow_x")
    assert time.monotonic() - started < 2.0
    assert isinstance(down.value.__cause__, redis.RedisError)
    with pytest.raises(StoreUnavailable):
        handle.start({})


def test_flows_refuse_to_guess_a_redis_when_the_broker_is_not_redis(make_crux):
    app = json_app("crux_amqp", "redis://127.0.0.1:6379/12", "crux-amqp")
    app.conf.broker_url = "amqp://guest@127.0.0.1:5672//"
    crux = make_crux(app, CruxSettings(key_prefix="crux-amqp"))
    handle = crux.flow("amqp", args=_Args)
    with pytest.raises(ConfigurationError, match="CRUX_REDIS_URL"):
        handle.status("flow_x")


def test_an_app_switched_to_pickle_after_crux_is_refused_before_publishing(make_crux):
    app = json_app("crux_pickle", "redis://127.0.0.1:6379/12", f"crux-pickle-{uuid.uuid4().hex[:6]}")
    crux = make_crux(app, CruxSettings(key_prefix="crux-pickle"))

    @crux.action(name="p.noop")
    def noop(ctx, args):
        return None

    app.conf.accept_content = ["json", "pickle"]
    with pytest.raises(ConfigurationError, match="pickle"):
        noop.delay({})


def test_the_lease_renewer_keeps_renewing_while_executions_start_often():
    from cruxcelery.flows.lease_renewer import HeldLease, renewer

    renewed = []
    long_step = HeldLease("long", "t", lambda fid, tok: renewed.append(time.monotonic()) or True)
    renewer.hold(long_step, 1.5)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            short = HeldLease("short", "t", lambda fid, tok: True)
            renewer.hold(short, 1.5)
            renewer.release(short)
            time.sleep(0.02)

    thread = threading.Thread(target=churn)
    thread.start()
    time.sleep(3.0)
    stop.set()
    thread.join()
    renewer.release(long_step)
    assert len(renewed) >= 4, f"renewed {len(renewed)} times in 3 s with a 1.5 s lease"


from pydantic import BaseModel  # noqa: E402


class _Args(BaseModel):
    pass


def test_a_process_that_never_imported_the_flow_still_validates_its_signals(worker, make_crux):
    from tests.app import REDIS

    flow_id = resumable.start({})
    wait_status(resumable, flow_id, "suspended")
    web = make_crux(json_app("crux_web", REDIS, "crux-web-unused"), CruxSettings(key_prefix="crux-t"))

    with pytest.raises(SignalRejected, match="declares no signal 'goo'"):
        signal_flow(flow_id, "goo", {"topic": "typo"}, crux=web)
    with pytest.raises(SignalRejected) as refused:
        signal_flow(flow_id, "go", {"topic": 42}, crux=web)
    assert refused.value.errors[0]["loc"] == ["topic"]
    signal_flow(flow_id, "go", {"topic": "from the web"}, crux=web)
    assert resumable.result(flow_id, timeout_s=15).output == "from the web"


def test_with_observability_flush_decorates_methods():
    from cruxcelery import with_observability_flush

    class View:
        @with_observability_flush(timeout_s=0.1)
        def handle(self, value: int) -> int:
            return value * 2

    assert View().handle(21) == 42


def test_the_envelope_encoder_keeps_the_cap_the_decoder_enforces():
    from cruxcelery.core.envelope import Envelope, EnvelopeCodec
    from cruxcelery.telemetry import ids

    codec = EnvelopeCodec(max_bytes=400)
    envelope = Envelope(kind="continuation", operation_id=ids.run_id(), run_id=ids.run_id(),
                        trace_id="a" * 32, parent_span_id="b" * 16, segment_id=ids.segment_id(),
                        label="x" * 200, run_name="y" * 200)

    raw = codec.encode(envelope)

    assert len(raw.encode()) <= 400
    assert codec.decode(raw) is not None
