"""Redaction by value: registered secrets and secret-shaped strings never reach a record."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from cruxcelery.telemetry import ids, redaction
from cruxcelery.telemetry.evidence import summary
from cruxcelery.telemetry.exporter import FlushResult, JsonRecord
from cruxcelery.telemetry.preview import json_safe
from cruxcelery.telemetry.recorder import Recorder
from cruxcelery.telemetry.redaction import REDACTED, Redactor
from cruxcelery.telemetry.spans import CruxSpan, new_root_segment

SECRET = "hunter2-correct-horse"


class ListExporter:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def export(self, records: Sequence[JsonRecord]) -> None:
        self.records.extend(dict(record) for record in records)

    def flush(self, timeout_s: float) -> FlushResult:
        return FlushResult()

    def shutdown(self, timeout_s: float) -> FlushResult:
        return FlushResult()


@pytest.fixture(autouse=True)
def _default_redactor() -> Iterator[None]:
    redaction.configure()
    yield
    redaction.configure()


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Authorization: Bearer abcdefghijklmnop.qrstuv", "Authorization: Bearer "),
        ("key=sk-abcdefghijklmnopqrstuv", "key="),
        ("key=sk-ant-api03-abcdefghijklmnopqrstuv", "key="),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123", "token "),
        ("slack xoxb-1234567890-abcdefghij", "slack "),
        ("aws AKIAABCDEFGHIJKLMNOP here", "aws "),
    ],
)
def test_default_patterns_redact_bearer_tokens_and_api_key_shapes(text: str, kept: str) -> None:
    out = Redactor().text(text)
    assert REDACTED in out and out.startswith(kept)


def test_a_key_shape_inside_a_longer_word_is_left_alone() -> None:
    assert Redactor().text("task-abcdefghijklmnopqrstuv") == "task-abcdefghijklmnopqrstuv"


def test_ordinary_text_is_left_alone() -> None:
    text = "Traceback (most recent call last): ValueError: the skeleton key is missing"
    assert Redactor().text(text) is text


def test_a_registered_secret_is_replaced_wherever_it_appears_in_a_string() -> None:
    redactor = Redactor([SECRET], ())
    assert redactor.text(f"login failed for {SECRET!r} (twice: {SECRET})") == (
        f"login failed for '{REDACTED}' (twice: {REDACTED})"
    )


def test_secret_str_values_are_accepted() -> None:
    with redaction.secrets([SecretStr(SECRET)]):
        assert redaction.redact_text(f"x {SECRET} y") == f"x {REDACTED} y"


def test_values_shorter_than_the_minimum_are_ignored() -> None:
    with redaction.secrets(["ab"]):
        assert redaction.redact_text("abcabc") == "abcabc"


def test_secrets_apply_inside_the_block_only_and_nested_blocks_add_up() -> None:
    with redaction.secrets([SECRET]):
        with redaction.secrets(["other-secret-value"]):
            assert redaction.redact_text(f"{SECRET} other-secret-value") == f"{REDACTED} {REDACTED}"
        assert redaction.redact_text("other-secret-value") == "other-secret-value"
        assert redaction.redact_text(SECRET) == REDACTED
    assert redaction.redact_text(SECRET) == SECRET


def test_with_no_secrets_and_no_patterns_there_is_no_active_redactor() -> None:
    redaction.configure(patterns=())
    assert redaction.active() is None
    value = {"a": "b" * 50}
    assert json_safe(value) == value


def test_previews_are_redacted_at_any_depth_keys_included() -> None:
    with redaction.secrets([SECRET]):
        out = json_safe({"args": [{"note": f"uses {SECRET}"}], SECRET: 1, "auth": "Bearer abcdefghijklmnop"})
    text = json.dumps(out)
    assert SECRET not in text and "abcdefghijklmnop" not in text and text.count(REDACTED) == 3


def test_an_error_summary_message_is_redacted() -> None:
    with redaction.secrets([SECRET]):
        assert summary(ValueError(f"bad password {SECRET}"))["message"] == f"bad password {REDACTED}"


def _failing_span_records(exporter: ListExporter, message: str) -> None:
    segment, started = new_root_segment(Recorder([exporter]), "job", "custom.operation", adopt_current_otel=False)
    span = segment.start_span("job", "custom.operation", parent=None, started=started)
    try:
        raise RuntimeError(message)
    except RuntimeError as exc:
        exc.detail = {"echo": message}  # type: ignore[attr-defined]
        span.end("error", exc)


def test_a_secret_echoed_in_an_exception_appears_in_no_record() -> None:
    exporter = ListExporter()
    with redaction.secrets([SECRET]):
        _failing_span_records(exporter, f"upstream refused key {SECRET}")
    artifacts = {record["kind"] for record in exporter.records if record["type"] == "artifact"}
    events = {record["name"] for record in exporter.records if record["type"] == "span:event"}
    assert artifacts == {"error.stack", "error.raw"} and events == {"exception"}
    text = json.dumps(exporter.records)
    assert SECRET not in text and REDACTED in text


def test_the_opentelemetry_twin_of_a_failing_span_is_redacted() -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()  # a local provider: the global one is left alone
    provider.add_span_processor(SimpleSpanProcessor(spans))
    segment, _ = new_root_segment(Recorder([ListExporter()]), "job", "custom.operation", adopt_current_otel=False)
    otel_span = provider.get_tracer("test").start_span("job")
    span = CruxSpan(segment, ids.span_id(), None, "job", "custom.operation", otel_span)
    with redaction.secrets([SECRET]):
        try:
            raise RuntimeError(f"upstream refused key {SECRET}")
        except RuntimeError as exc:
            span.end("error", exc)
    (finished,) = spans.get_finished_spans()
    events = [dict(event.attributes or {}) for event in finished.events]
    dumped = json.dumps([finished.status.description, events], default=str)
    assert SECRET not in dumped and REDACTED in dumped


class _ShowsItsUrl(Exception):
    def __init__(self, url: str = "") -> None:
        super().__init__()
        self.url = url

    def __str__(self) -> str:
        return f"401 for url: {self.url}"


def _format(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(exc))


def test_an_exception_whose_text_still_shows_a_secret_is_stood_in_for_with_its_traceback() -> None:
    try:
        raise _ShowsItsUrl(f"https://api.example/v1?key={SECRET}")
    except _ShowsItsUrl as exc:
        with redaction.secrets([SECRET]):
            shown = redaction.redact_exception(exc)
    assert isinstance(shown, redaction.RedactedError)
    assert str(shown) == f"_ShowsItsUrl: 401 for url: https://api.example/v1?key={REDACTED}"
    assert "test_an_exception_whose_text_still_shows_a_secret" in _format(shown), "the traceback is kept"


def test_a_chained_exception_showing_a_secret_is_replaced_in_the_chain() -> None:
    try:
        try:
            raise _ShowsItsUrl(f"https://api.example/v1?key={SECRET}")
        except _ShowsItsUrl as cause:
            raise RuntimeError("the upload failed") from cause
    except RuntimeError as exc:
        with redaction.secrets([SECRET]):
            shown = redaction.redact_exception(exc)
    text = _format(shown)
    assert isinstance(shown, RuntimeError) and isinstance(shown.__cause__, redaction.RedactedError)
    assert SECRET not in text and "the upload failed" in text and f"key={REDACTED}" in text


def test_the_strings_inside_an_exceptions_args_and_notes_are_redacted_in_place() -> None:
    exc = LookupError({"key": SECRET}, (SECRET, 3))
    exc.add_note(f"while sending {SECRET}")
    with redaction.secrets([SECRET]):
        shown = redaction.redact_exception(exc)
    assert shown is exc
    assert exc.args == ({"key": REDACTED}, (REDACTED, 3)) and exc.__notes__ == [f"while sending {REDACTED}"]
