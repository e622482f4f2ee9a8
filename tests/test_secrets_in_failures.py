"""A secret of an action's args never leaves the worker in clear when the action fails with it in
its message: not in the result backend, nor in the worker's log (docs/architecture.md, "One outcome
per execution": the failure is redacted where the action closes)."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import quote, quote_plus

import pytest

from tests.workers import subprocess_worker

pytestmark = pytest.mark.subprocess

KEY = "pk-live/9f2c+4e7a=b81d"  # a key no default pattern knows, with characters URL-encoding changes


def _forms(secret: str) -> list[str]:
    return [secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(secret.encode()).decode(),
            json.dumps(secret)[1:-1]]


def test_a_failing_actions_secret_is_redacted_in_the_result_backend_and_the_worker_log(tmp_path, celery_test_app):
    with subprocess_worker(tmp_path, concurrency=1, extra_args=("-E",)) as worker:
        result = celery_test_app.leaks_its_key.apply_async(({"key": KEY},), queue=worker.queue)
        with pytest.raises(PermissionError) as failure:
            result.get(timeout=30)
        assert "401 for url" in str(failure.value) and "[REDACTED]" in str(failure.value)
        stored = json.dumps(result.backend.get_task_meta(result.id), default=str)
        deadline = time.monotonic() + 30  # the worker logs the failure after it stored the result
        while "401 for url" not in worker.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = worker.log()
    for form in _forms(KEY):
        assert form not in str(failure.value), form
        assert form not in stored, form
        assert form not in log, form
    assert "401 for url" in log, "the failure itself is logged"


@pytest.mark.parametrize("shape", ["validation", "attribute", "dict_arg"])
def test_a_secret_the_exceptions_args_do_not_hold_is_redacted_too(tmp_path, celery_test_app, shape):
    """A pydantic ``ValidationError`` shows ``input_value`` from no ``args``; an exception's
    ``__str__`` may read an attribute; an arg may be a dict: what Celery stores, sends in its
    task-failed event (the same traceback text) and logs still shows no form of the key."""
    with subprocess_worker(tmp_path, concurrency=1, extra_args=("-E",)) as worker:
        result = celery_test_app.leaks_its_key_elsewhere.apply_async(({"key": KEY, "shape": shape},),
                                                                     queue=worker.queue)
        with pytest.raises(Exception) as failure:
            result.get(timeout=30)
        meta = result.backend.get_task_meta(result.id)
        deadline = time.monotonic() + 30  # the worker logs the failure after it stored the result
        while "Traceback" not in worker.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = worker.log()
    stored = json.dumps(meta, default=str)
    assert meta["status"] == "FAILURE" and meta["traceback"], "the failure and its traceback are stored"
    assert "Traceback" in log, "the failure is logged with its traceback"
    for form in _forms(KEY):
        assert form not in f"{failure.value!s} {failure.value!r}", form
        assert form not in stored, form
        assert form not in log, form


def test_an_error_the_task_retries_on_keeps_its_type_so_the_retry_happens(tmp_path, celery_test_app):
    """A stand-in would not match ``autoretry_for``: an error the task acts on by type is kept."""
    with subprocess_worker(tmp_path, concurrency=1) as worker:
        result = celery_test_app.retries_a_leaky_call.apply_async(({"key": KEY, "shape": "attribute"},),
                                                                  queue=worker.queue)
        assert result.get(timeout=30) == {"attempts": 2}
