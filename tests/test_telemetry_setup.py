"""Telemetry built from settings: which delivery path, the HTTP exporter's settings, redaction
patterns, the secret values of an action's args, and ``cruxcelery forward``."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
from pydantic import BaseModel, SecretStr

from cruxcelery import ConfigurationError, CruxSettings
from cruxcelery.core.actions import may_hold_secrets, secret_values
from cruxcelery.core.runtime import configure_redaction
from cruxcelery.delivery.build import build, http_exporter, spool_key, spool_url, telemetry_redis_url
from cruxcelery.delivery.forward import run_forwarder
from cruxcelery.telemetry import redaction
from cruxcelery.telemetry.http.exporter import HttpExporter
from cruxcelery.telemetry.spool.stream import SpoolExporter, spool_client
from tests.receiver import Receiver, sample_records

REDIS_URL = "redis://127.0.0.1:6379/7"
DEVTOOLS = "http://127.0.0.1:4400"


def test_the_spool_redis_is_the_telemetry_url_else_the_flow_store_else_a_redis_broker() -> None:
    broker = "redis://broker:6379/0"
    assert telemetry_redis_url(CruxSettings(), broker) == broker
    assert telemetry_redis_url(CruxSettings(), "amqp://rabbit//") is None
    assert telemetry_redis_url(CruxSettings(redis_url="redis://store/1"), broker) == "redis://store/1"
    both = CruxSettings(redis_url="redis://store/1", telemetry_redis_url="redis://tele/2")
    assert telemetry_redis_url(both, broker) == "redis://tele/2"


def test_the_spool_is_used_with_a_devtools_url_or_when_switched_on() -> None:
    broker = "redis://broker:6379/0"
    assert spool_url(CruxSettings(), broker) is None  # nobody would read it
    assert spool_url(CruxSettings(devtools_url=DEVTOOLS), broker) == broker
    assert spool_url(CruxSettings(spool="on"), broker) == broker
    assert spool_url(CruxSettings(devtools_url=DEVTOOLS, spool="off"), broker) is None
    assert spool_url(CruxSettings(devtools_url=DEVTOOLS), "amqp://rabbit//") is None
    assert spool_url(CruxSettings(devtools_url=DEVTOOLS, telemetry_enabled=False), broker) is None
    assert spool_key(CruxSettings(key_prefix="acme")) == "acme:telemetry"


def test_build_picks_the_spool_or_the_http_exporter() -> None:
    spooled = build(CruxSettings(devtools_url=DEVTOOLS, spool_max_entries=7), REDIS_URL)
    assert isinstance(spooled.exporter, SpoolExporter) and spooled.spool_url == REDIS_URL
    assert spooled.exporter.max_entries == 7
    http = build(CruxSettings(devtools_url=DEVTOOLS), "amqp://rabbit//")
    assert isinstance(http.exporter, HttpExporter) and http.exporter.breaker is not None
    assert build(CruxSettings(), "amqp://rabbit//").exporter is None


def test_settings_read_the_new_variables() -> None:
    settings = CruxSettings.from_env({
        "CRUX_TELEMETRY_REDIS_URL": "redis://tele/3", "CRUX_SPOOL": "false", "CRUX_FORWARDER": "on",
        "CRUX_SPOOL_MAX_ENTRIES": "500", "CRUX_REDACT_PATTERNS": '["acme_[0-9a-f]{8}", "x,y"]',
        "CRUX_FORWARDER_CLAIM_IDLE_S": "2.5",
    })
    assert settings.telemetry_redis_url == "redis://tele/3" and settings.spool == "off"
    assert settings.forwarder == "on" and settings.spool_max_entries == 500
    assert settings.redact_patterns == ("acme_[0-9a-f]{8}", "x,y") and settings.forwarder_claim_idle_s == 2.5
    assert CruxSettings.from_env({"CRUX_REDACT_PATTERNS": "a+\nb+\n"}).redact_patterns == ("a+", "b+")
    with pytest.raises(ConfigurationError):
        CruxSettings.from_env({"CRUX_REDACT_PATTERNS": "(("})
    with pytest.raises(ConfigurationError):
        CruxSettings.from_env({"CRUX_TELEMETRY_REDIS_URL": "http://not-redis"})


def test_configured_patterns_are_redacted_with_the_defaults() -> None:
    try:
        configure_redaction(CruxSettings(redact_patterns=("acme_[0-9a-f]{8}",)))
        assert redaction.redact_text("key acme_0123abcd and Bearer abcdefghijklmnop") == (
            "key [REDACTED] and Bearer [REDACTED]"
        )
    finally:
        configure_redaction(CruxSettings())


def test_bearer_token_from_settings_is_sent() -> None:
    with Receiver() as receiver:
        settings = CruxSettings(devtools_url=receiver.url + "/", devtools_token=SecretStr("tok-123"))
        exporter = http_exporter(settings)
        assert exporter is not None
        exporter.export(sample_records(1))
        assert exporter.shutdown(3.0).status == "drained"
        assert receiver.requests()[0].headers["authorization"] == "Bearer tok-123"
    assert http_exporter(CruxSettings()) is None


class Inner(BaseModel):
    token: SecretStr
    note: str = "x"


class Outer(BaseModel):
    name: str
    inner: Inner
    more: list[Inner] = []
    keyed: dict[str, SecretStr] = {}


class Plain(BaseModel):
    name: str
    count: int = 0


def test_secret_values_walk_nested_models_lists_and_dicts() -> None:
    value = Outer(name="n", inner=Inner(token=SecretStr("aaaa1")), more=[Inner(token=SecretStr("bbbb2"))],
                  keyed={"k": SecretStr("cccc3")})
    assert sorted(s.get_secret_value() for s in secret_values(value)) == ["aaaa1", "bbbb2", "cccc3"]
    assert may_hold_secrets(Outer) and may_hold_secrets(Inner)
    assert not may_hold_secrets(Plain) and not may_hold_secrets(None)


def test_cruxcelery_forward_delivers_the_spool_until_stopped() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"crux-fwd-{uuid.uuid4().hex[:8]}"
    try:
        with Receiver() as receiver:
            settings = CruxSettings(devtools_url=receiver.url, key_prefix=prefix)
            exporter = SpoolExporter(spool_client(REDIS_URL), spool_key(settings))
            records = sample_records(30)
            exporter.export(records)
            assert exporter.flush(1.0).status == "drained"
            stop = threading.Event()
            thread = threading.Thread(target=run_forwarder, args=(settings, REDIS_URL), kwargs={"stop": stop})
            thread.start()
            try:
                assert receiver.wait_for(records=30, timeout=10)
            finally:
                stop.set()
                thread.join(10)
            assert not thread.is_alive()
            assert sorted(receiver.record_ids()) == sorted(r["recordId"] for r in records)
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()
