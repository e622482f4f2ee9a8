"""A secret never rests anywhere but in the broker message that carried it: after an action and a
durable child (a flow step's ``ctx.crux.run_action``) fail with their ``SecretStr`` key in the
message (plain, repr, JSON, URL-encoded, base64), no form of the key is in any Redis key (the
result backend and the flow's records included), the worker's log, or Flower's API
(docs/security.md, "Secrets"). A real prefork worker with task events on, and a real Flower."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pytest
import redis

from tests import secret_scan_app
from tests.flower_server import flower_server, get_json
from tests.secret_scan_app import KEY
from tests.workers import subprocess_worker

pytestmark = pytest.mark.subprocess
pytest.importorskip("flower")

FAILURE_TEXT = "401 for url"  # what each failure says besides the key: the scan sees the failures


def forms(secret: str) -> set[str]:
    encoded = base64.b64encode(secret.encode()).decode()
    return {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret),
            encoded, encoded.rstrip("="), base64.urlsafe_b64encode(secret.encode()).decode()}


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def views(text: str, depth: int = 0) -> Iterator[str]:
    """``text`` and what it decodes to: the strings of a JSON document, base64 tokens (a kombu
    message's body), URL-encoded text; recursively, a few levels deep."""
    yield text
    if depth >= 4:
        return
    for unquoted in {unquote(text), unquote_plus(text)} - {text}:
        yield from views(unquoted, depth + 1)
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, str | int | float | None):
        for leaf in _strings(document):
            yield from views(leaf, depth + 1)
    for token in _BASE64.findall(text):
        try:
            decoded = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_" if "-" in token or "_" in token
                                       else None, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        yield from views(decoded, depth + 1)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def leaks(text: str) -> set[str]:
    """The forms of the key found in ``text`` or in anything it decodes to."""
    wanted = forms(KEY)
    return {form for view in views(text) for form in wanted if form in view}


def redis_contents(client: redis.Redis) -> dict[str, str]:  # type: ignore[type-arg]
    """Every key of the database and everything in it, whatever its type, as text."""
    found: dict[str, str] = {}
    for raw_key in client.scan_iter(count=500):
        key = raw_key.decode(errors="replace")
        kind = client.type(raw_key).decode()
        parts: list[Any]
        if kind == "string":
            parts = [client.get(raw_key)]
        elif kind == "hash":
            parts = [item for pair in client.hgetall(raw_key).items() for item in pair]
        elif kind == "list":
            parts = list(client.lrange(raw_key, 0, -1))
        elif kind == "set":
            parts = list(client.smembers(raw_key))
        elif kind == "zset":
            parts = [member for member, _score in client.zrange(raw_key, 0, -1, withscores=True)]
        elif kind == "stream":
            parts = [item for _id, fields in client.xrange(raw_key) for pair in fields.items() for item in pair]
        else:
            parts = []
        found[key] = "\n".join([key, *(p.decode(errors="replace") if isinstance(p, bytes) else str(p)
                                       for p in parts if p is not None)])
    return found


def _poll(fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {json.dumps(value, default=str)[:3000]}")
        time.sleep(0.3)


def test_the_scanner_finds_every_form_of_the_key_in_a_kombu_message() -> None:
    body = base64.b64encode(json.dumps([[], {"key": KEY}, {}]).encode()).decode()
    message = json.dumps({"body": body, "content-encoding": "utf-8", "headers": {}})
    assert leaks(message)
    for form in forms(KEY):
        assert leaks(f"error: {form}!") >= {form}, form


def test_a_secret_in_failure_messages_rests_nowhere_but_the_broker_message(tmp_path: Path) -> None:
    client = redis.Redis.from_url(secret_scan_app.REDIS)
    client.flushdb()
    app = secret_scan_app.app
    with subprocess_worker(tmp_path, app="tests.secret_scan_app", extra_args=("-E",)) as worker, \
            flower_server(tmp_path, "tests.secret_scan_app", worker.queue) as base:
        app.conf.task_default_queue = worker.queue

        def tasks() -> dict[str, Any]:
            return get_json(f"{base}/api/tasks")  # type: ignore[no-any-return]

        # Flower subscribes to events in the background: the action fails until Flower has seen it
        actions = []
        deadline = time.monotonic() + 45
        while not any(t.get("name") == "Call the API" and t.get("state") == "FAILURE" for t in tasks().values()):
            assert time.monotonic() < deadline, "flower never saw the action fail"
            actions.append(secret_scan_app.call_the_api.delay({"key": KEY}))
            time.sleep(1.0)
        with pytest.raises(PermissionError, match=FAILURE_TEXT):
            actions[0].get(timeout=30)

        flow_id = secret_scan_app.calls_the_api.start({"job": "j1"})
        result = secret_scan_app.calls_the_api.result(flow_id, timeout_s=60)
        assert result is not None and result.status == "failed"
        assert FAILURE_TEXT in str(result.error), "the flow failed with its child's error"

        def flower_sees_the_flow_fail(found: dict[str, Any]) -> bool:
            failed = [t for t in found.values() if t.get("state") == "FAILURE"]
            return (any(t.get("name") == "Call the API" and flow_id in str(t.get("kwargs")) for t in failed)
                    and any(str(t.get("name")).startswith("ss-calls-the-api") for t in failed))

        in_flower = _poll(tasks, flower_sees_the_flow_fail, 60, "flower to see the child and the flow fail")
        _poll(worker.log, lambda text: "ss-calls-the-api" in text and text.count(FAILURE_TEXT) >= 2, 30,
              "the worker to log the failures")

        flower = {"/api/tasks": json.dumps(in_flower)}
        for task_id in in_flower:
            flower[f"/api/task/info/{task_id}"] = json.dumps(get_json(f"{base}/api/task/info/{task_id}"))
        log = worker.log()

    stored = redis_contents(client)
    broker_messages = {worker.queue, "unacked"}  # where a call's message waits until it is acknowledged
    places = {**{f"redis {key}": text for key, text in stored.items() if key not in broker_messages},
              "the worker log": log, **{f"flower {path}": text for path, text in flower.items()}}

    assert any(FAILURE_TEXT in text for key, text in stored.items() if "celery-task-meta-" in key), \
        "the result backend holds the failures"
    assert any(FAILURE_TEXT in text for text in flower.values()), "flower shows the failures"
    assert FAILURE_TEXT in log
    leaked = {place: sorted(found) for place, text in places.items() if (found := leaks(text))}
    assert leaked == {}
    client.flushdb()


def _without_snapshot_input(key: str, text: str) -> str:
    """A flow's hash without its snapshot's ``input``: the real value is kept there by design (a
    resume validates the input again), and nowhere else."""
    if not key.endswith(":flow"):
        return text
    kept = []
    for line in text.split("\n"):
        if line.startswith("{") and '"input"' in line:
            snapshot = json.loads(line)
            snapshot.pop("input", None)
            line = json.dumps(snapshot)
        kept.append(line)
    return "\n".join(kept)


def test_a_flow_holding_a_secret_keeps_it_in_its_snapshot_input_only(tmp_path: Path) -> None:
    client = redis.Redis.from_url(secret_scan_app.REDIS)
    client.flushdb()
    with subprocess_worker(tmp_path, app="tests.secret_scan_app", extra_args=("-E",)) as worker, \
            flower_server(tmp_path, "tests.secret_scan_app", worker.queue) as base:
        secret_scan_app.app.conf.task_default_queue = worker.queue

        def tasks() -> dict[str, Any]:
            return get_json(f"{base}/api/tasks")  # type: ignore[no-any-return]

        flow_ids: list[str] = []
        deadline = time.monotonic() + 45
        while not any(str(t.get("name")).startswith("ss-holds-the-key") and t.get("state") == "FAILURE"
                      for t in tasks().values()):  # flower subscribes in the background: fail until it sees one
            assert time.monotonic() < deadline, "flower never saw the flow fail"
            flow_ids.append(secret_scan_app.holds_the_key.start({"job": "j1", "key": KEY}))
            time.sleep(1.0)
        result = secret_scan_app.holds_the_key.result(flow_ids[-1], timeout_s=60)
        assert result is not None and result.status == "failed"
        assert "gave up on key" in str(result.error)
        _poll(worker.log, lambda text: "gave up on key" in text, 30, "the worker to log the failure")
        in_flower = tasks()
        flower = {"/api/tasks": json.dumps(in_flower)}
        for task_id in in_flower:
            flower[f"/api/task/info/{task_id}"] = json.dumps(get_json(f"{base}/api/task/info/{task_id}"))
        log = worker.log()

    stored = redis_contents(client)
    broker_messages = {worker.queue, "unacked"}
    places = {**{f"redis {key}": _without_snapshot_input(key, text) for key, text in stored.items()
                 if key not in broker_messages},
              "the worker log": log, **{f"flower {path}": text for path, text in flower.items()}}
    assert any(key.endswith(":flow") and json.dumps(KEY)[1:-1] in text for key, text in stored.items()), \
        "the snapshot keeps the real input"
    assert any("gave up on key" in text for text in flower.values())
    leaked = {place: sorted(found) for place, text in places.items() if (found := leaks(text))}
    assert leaked == {}
    client.flushdb()
