"""CruxSettings: every ``CRUX_*`` environment variable, documented once.

| variable | field | default | meaning |
| --- | --- | --- | --- |
| CRUX_REDIS_URL | redis_url | the app's broker URL if it is Redis; required otherwise (flows refuse to guess) | where flow snapshots, signals, leases and timers live: ``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://host:26379[,host:port]/service[/db]`` or ``redis+cluster://host:port[,host:port]`` (docs/flows.md, "Redis topologies") |
| CRUX_REDIS_TIMEOUT_S | redis_timeout_s | ``5.0`` | socket timeout of the flow store's Redis calls: a call while Redis is down raises ``StoreUnavailable`` within it |
| CRUX_KEY_PREFIX | key_prefix | ``crux`` | prefix of every Redis key cruxcelery writes |
| CRUX_DEVTOOLS_URL | devtools_url | unset | devtools base URL; records are POSTed to ``{url}/api/observability/records`` |
| CRUX_DEVTOOLS_TOKEN | devtools_token | unset | bearer token sent to devtools |
| CRUX_RECORDS_FILE | records_file | unset | append every record as one JSON line to this file (for subprocess workers) |
| CRUX_FLUSH_TIMEOUT_S | flush_timeout_s | ``3.0`` | bound of the flush in every action's ``finally`` |
| CRUX_BOUNDARY_FLUSH_TIMEOUT_S | boundary_flush_timeout_s | ``1.0`` | bound of the flush before a child task is published |
| CRUX_SIGNING_KEY | signing_key | unset | HMAC-SHA256 key; when set, envelopes are signed (for their task's id and name) and unsigned or forged ones ignored |
| CRUX_ENVELOPE_MAX_BYTES | envelope_max_bytes | ``4096`` | larger envelopes are ignored (the task runs as a new root) |
| CRUX_DEFAULT_LEASE_S | default_lease_s | ``660`` | boundary lease when the task has no hard time limit |
| CRUX_QUEUE_MAX_RECORDS | queue_max_records | ``10000`` | in-process delivery queue bound (oldest dropped and counted) |
| CRUX_QUEUE_MAX_BYTES | queue_max_bytes | ``33554432`` | the same bound in bytes |
| CRUX_TELEMETRY | telemetry_enabled | ``true`` | ``false`` turns record emission off entirely |
| CRUX_FLOW_LEASE_S | flow_lease_s | ``30`` | one execution per flow: the lease (renewed while it runs) lapses this long after a crash |
| CRUX_SWEEP_INTERVAL_S | sweep_interval_s | ``1.0`` | every worker's sweeper (one at a time across workers) fires due timers and recovers flows this often; every worker heartbeats this often |
| CRUX_FLOW_RETENTION_S | flow_retention_s | ``604800`` (7 days) | finished flows and all their keys expire this long after they finish |
| CRUX_SIGNAL_MAX_BYTES | signal_max_bytes | ``1048576`` | larger signal payloads (as JSON) are refused with ``SignalRejected`` |
| CRUX_TIMER_HOP_S | timer_hop_s | half the broker visibility timeout, at most ``300`` | longest countdown of one timer wake-up |
| CRUX_TELEMETRY_REDIS_URL | telemetry_redis_url | ``CRUX_REDIS_URL``, else the broker URL when it is Redis; none otherwise | the Redis holding the telemetry spool (the stream ``{prefix}:telemetry``) |
| CRUX_SPOOL | spool | ``auto`` | ``auto``: spool when a telemetry Redis is known and ``CRUX_DEVTOOLS_URL`` is set; ``on``: whenever a telemetry Redis is known (a ``cruxcelery forward`` process or devtools reads it); ``off``: never (records go over HTTP from an in-process queue) |
| CRUX_SPOOL_MAX_ENTRIES | spool_max_entries | ``100000`` | ``MAXLEN ~`` of the spool stream (one entry per action flush); what is trimmed unread is counted |
| CRUX_FORWARDER | forwarder | ``auto`` | ``auto``/``on``: every worker process runs a forwarder thread (spool -> devtools) when a spool and ``CRUX_DEVTOOLS_URL`` exist, standing by while ``cruxcelery dev --redis`` reads the spool itself; ``off``: none (run ``cruxcelery forward`` instead) |
| CRUX_FORWARDER_CLAIM_IDLE_S | forwarder_claim_idle_s | ``30`` | a dead forwarder's unacknowledged spool entries are claimed by another after this long |
| CRUX_RECORD_CONTENT | record_content | ``false`` | ``true`` records what generations read and write (the ``messages`` and ``output`` artifacts' text, the arguments of the tool calls a model requests, ``gen_ai.input.messages`` / ``gen_ai.output.messages`` on OpenTelemetry spans); off, only their shape (roles, counts, lengths) is recorded, as OpenTelemetry's GenAI conventions advise |
| CRUX_REDACT_PATTERNS | redact_patterns | none | extra regexes whose matches are redacted from every record (a JSON array of strings, or one regex per line), on top of the defaults (bearer tokens, common API key shapes) |
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from cruxcelery.errors import ConfigurationError
from cruxcelery.telemetry.redis_urls import check_redis_url

_ENV_PREFIX = "CRUX_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class CruxSettings(BaseModel):
    """Typed settings. Build with ``CruxSettings.from_env()`` or pass fields directly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    redis_url: str | None = None
    key_prefix: str = Field(default="crux", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    devtools_url: str | None = None
    devtools_token: SecretStr | None = None
    records_file: str | None = None
    flush_timeout_s: float = Field(default=3.0, ge=0, le=300)
    boundary_flush_timeout_s: float = Field(default=1.0, ge=0, le=60)
    signing_key: SecretStr | None = None
    envelope_max_bytes: int = Field(default=4096, ge=256, le=65536)
    default_lease_s: float = Field(default=660.0, gt=0)
    queue_max_records: int = Field(default=10_000, ge=1)
    queue_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    telemetry_enabled: bool = True
    flow_lease_s: float = Field(default=30.0, ge=1, le=3600)
    timer_hop_s: float | None = Field(default=None, gt=0)
    redis_timeout_s: float = Field(default=5.0, gt=0, le=300)
    sweep_interval_s: float = Field(default=1.0, ge=0.05, le=3600)
    flow_retention_s: float = Field(default=7 * 86400.0, gt=0)
    signal_max_bytes: int = Field(default=1024 * 1024, ge=64)
    telemetry_redis_url: str | None = None
    spool: Literal["auto", "on", "off"] = "auto"
    spool_max_entries: int = Field(default=100_000, ge=1)
    forwarder: Literal["auto", "on", "off"] = "auto"
    forwarder_claim_idle_s: float = Field(default=30.0, gt=0, le=86400)
    redact_patterns: tuple[str, ...] = ()
    record_content: bool = False

    @field_validator("spool", "forwarder", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str):
            lowered = value.strip().lower()
            return "on" if lowered in _TRUE else "off" if lowered in _FALSE else lowered
        return value

    @field_validator("redis_url", "telemetry_redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return check_redis_url(value.strip())

    @field_validator("redact_patterns", mode="before")
    @classmethod
    def _patterns(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            lines = [line for line in text.splitlines() if line.strip()]
            value = json.loads(text) if text.startswith("[") else lines
        for pattern in value or ():
            try:
                re.compile(pattern)  # a bad regex fails here, at startup
            except (re.error, TypeError) as exc:
                raise ValueError(f"CRUX_REDACT_PATTERNS: {pattern!r} is not a regex: {exc}") from exc
        return value

    @field_validator("devtools_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("CRUX_DEVTOOLS_URL must start with http:// or https://")
        return value.rstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> CruxSettings:
        """Read every ``CRUX_*`` variable; ``overrides`` win. Raises ``ConfigurationError``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(_ENV_PREFIX + _env_name(name))
            if raw is None:
                continue
            if name == "telemetry_enabled":
                lowered = raw.strip().lower()
                if lowered not in _TRUE | _FALSE:
                    raise ConfigurationError(f"CRUX_TELEMETRY must be true or false, not {raw!r}")
                values[name] = lowered in _TRUE
            else:
                values[name] = raw
        values.update(overrides)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigurationError(f"invalid cruxcelery settings: {exc}") from exc


def _env_name(field: str) -> str:
    return {"telemetry_enabled": "TELEMETRY"}.get(field, field.upper())
