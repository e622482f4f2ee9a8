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
