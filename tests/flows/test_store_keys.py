from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from cruxcelery.errors import ConfigurationError
from cruxcelery.flows.errors import InvalidFlowId
from cruxcelery.flows.snapshot import FlowSnapshot
from cruxcelery.flows.store.flow_store import RedisFlowStore
from cruxcelery.flows.store.keys import FlowKeys, create_flow_id
from cruxcelery.flows.store.timers import Timer

FLOWS_DIR = Path(__file__).resolve().parents[2] / "cruxcelery" / "flows"


def test_key_layout() -> None:
    keys = FlowKeys("app")

    assert keys.flow("f1") == "app:{f1}:flow"
    assert keys.signal("f1", "approval") == "app:{f1}:signal:approval"
    assert keys.delivered("f1") == "app:{f1}:delivered"
    assert keys.lease("f1") == "app:{f1}:lease"
    assert keys.wake("f1") == "app:{f1}:wake"
    assert keys.children("f1") == "app:{f1}:children"
    assert keys.flow_timers("f1") == "app:{f1}:timers"
    assert keys.status_index("suspended") == "app:flows:status:suspended"
    assert keys.name_index("writer") == "app:flows:name:writer"
    assert keys.all_index() == "app:flows:all"
    assert keys.idempotency("writer", "order:42") == "app:idem:writer:order:42"
    assert keys.timers() == "app:timers"
    assert FlowKeys().flow("f1") == "crux:{f1}:flow"


def test_every_key_of_one_flow_shares_its_cluster_hash_tag() -> None:
    keys = FlowKeys("app")
    per_flow = keys.per_flow("tenant:7", ["approval"])
    assert all("{tenant:7}" in key for key in per_flow)


def test_create_flow_id_format() -> None:
    first, second = create_flow_id(), create_flow_id()
    assert re.fullmatch(r"flow_[0-9a-f]{24}", first)
    assert first != second


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, "a/b", "a*", "é", "a\nb", "{x}"])
def test_invalid_flow_ids_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidFlowId, match="invalid flow id"):
        FlowKeys().flow(bad)


def test_colons_are_allowed_in_flow_ids_and_idempotency_keys_only() -> None:
    keys = FlowKeys()
    assert keys.flow("tenant:7:draft.1_a-b") == "crux:{tenant:7:draft.1_a-b}:flow"
    builders: list[Callable[[], str]] = [
        lambda: keys.signal("f1", "a:b"),
        lambda: keys.name_index("a:b"),
        lambda: keys.idempotency("a:b", "k"),
    ]
    for build in builders:
        with pytest.raises(InvalidFlowId):
            build()


def test_invalid_prefix_and_status_are_rejected() -> None:
    with pytest.raises(ConfigurationError):
        FlowKeys("bad prefix")
    with pytest.raises(InvalidFlowId):
        FlowKeys().status_index("sleeping")


def test_invalid_ids_are_rejected_before_any_redis_command() -> None:
    # Port 1 refuses connections: any command would raise ConnectionError, not InvalidFlowId.
    store = RedisFlowStore(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    good = FlowSnapshot(flow_id="f1", name="writer")
    bad_id, bad_name = "bad id", "bad:name"
    calls: list[Callable[[], Any]] = [
        lambda: store.snapshots.create(good, idempotency_key="bad key"),
        lambda: store.snapshots.load(bad_id),
        lambda: store.snapshots.require(bad_id),
        lambda: store.snapshots.exists(bad_id),
        lambda: store.snapshots.cancel(bad_id, "x"),
        lambda: store.leases.acquire_or_request_wake(bad_id, 10),
        lambda: store.leases.renew(bad_id, "t", 10),
        lambda: store.leases.release(bad_id, "t"),
        lambda: store.signals.push("f1", bad_name, {}),
        lambda: store.signals.push(bad_id, "approval", {}),
        lambda: store.signals.take("f1", bad_name, "x#0"),
        lambda: store.signals.pending_count("f1", bad_name),
        lambda: store.children.put("f1", bad_name, {}),
        lambda: store.children.get(bad_id, "s"),
        lambda: store.timers.remove_for(bad_id),
        lambda: store.listing.page(name=bad_name),
    ]
    for call in calls:
        with pytest.raises(InvalidFlowId):
            call()
    store.redis.close()


def test_models_refuse_invalid_ids() -> None:
    with pytest.raises(ValueError):
        FlowSnapshot(flow_id="bad id", name="writer")
    with pytest.raises(ValueError):
        FlowSnapshot(flow_id="f1", name="bad:name")
    with pytest.raises(ValueError):
        Timer(flow_id="bad id", version=0, kind="wake", due_ms=0)


def test_flow_errors_share_the_crux_root() -> None:
    from cruxcelery.errors import CruxError
    from cruxcelery.flows import errors

    assert issubclass(errors.FlowError, CruxError)
    assert issubclass(errors.FlowNotFound, KeyError)
    assert issubclass(errors.SignalRejected, ValueError) and issubclass(errors.InvalidFlowId, ValueError)
    controls = (errors.FlowSuspended, errors.FlowCancelled, errors.FlowWaiting, errors.FlowExpired,
                errors.LeaseLost, errors.VersionConflict)
    for control in controls:  # a step's `except Exception` cannot swallow them
        assert issubclass(control, errors.FlowControl) and not issubclass(control, Exception)
    assert errors.FlowCancelled("no").reason == "no"


def test_control_flow_escapes_except_exception() -> None:
    from cruxcelery.flows.errors import FlowSuspended

    def user_step() -> None:
        try:
            raise FlowSuspended("approval")
        except Exception:  # what careless user code does
            pytest.fail("FlowSuspended was swallowed by except Exception")

    with pytest.raises(FlowSuspended):
        user_step()


_FORBIDDEN = [
    re.compile(r"scan_iter"),
    re.compile(r"\.(scan|sscan|hscan|zscan|keys)\s*\("),
    re.compile(r"""['"](scan|keys|sscan|hscan|zscan)['"]""", re.IGNORECASE),
]


def test_the_flow_package_never_scans_the_keyspace() -> None:
    sources = sorted(FLOWS_DIR.glob("*.py"))
    assert len(sources) > 5
    for source in sources:
        code = source.read_text()
        for pattern in _FORBIDDEN:
            assert not pattern.search(code), f"{source.name} uses {pattern.pattern}"
