"""A flow whose input holds a ``SecretStr`` gets its real value in the handler, on every run (the
snapshot keeps the real value, docs/security.md "Secrets"), and its failures show it redacted."""

from __future__ import annotations

import redis

from tests import secret_scan_app
from tests.secret_scan_app import KEY


def test_a_flow_handler_receives_the_real_value_of_a_secret_in_its_input() -> None:
    client = redis.Redis.from_url(secret_scan_app.REDIS)
    client.flushdb()
    result = secret_scan_app.sees_the_key.run_inline({"job": "j1", "key": KEY})
    assert result is not None and result.status == "completed"
    assert result.output == {"real": True}  # type: ignore[union-attr]
    client.flushdb()


def test_a_flow_failing_with_its_inputs_secret_stores_the_error_redacted() -> None:
    client = redis.Redis.from_url(secret_scan_app.REDIS)
    client.flushdb()
    result = secret_scan_app.holds_the_key.run_inline({"job": "j1", "key": KEY})
    assert result is not None and result.status == "failed"
    message = result.error.message  # type: ignore[union-attr]
    assert message.startswith("gave up on key [REDACTED] ([REDACTED])"), message
    client.flushdb()
