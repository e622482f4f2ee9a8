"""A local HTTP server that speaks the wire formats of OpenAI's chat completions and Anthropic's
messages API, for driving the real ``openai``, ``anthropic`` and ``litellm`` clients in tests.

It runs in a thread (stdlib ``ThreadingHTTPServer``, HTTP/1.1 with keep-alive) and answers:

- ``POST /v1/chat/completions`` (OpenAI): a ``chat.completion`` JSON body, or with ``"stream": true``
  ``text/event-stream`` chunks (``data: {chat.completion.chunk}`` ... ``data: [DONE]``), with a final
  usage-only chunk when ``stream_options.include_usage`` is set, as the real API does;
- ``POST /v1/messages`` (Anthropic): a ``message`` JSON body, or with ``"stream": true`` the named
  event stream (``message_start``, ``content_block_start``/``_delta``/``_stop``, ``ping``,
  ``message_delta``, ``message_stop``).

What to answer is chosen by a tag in the text of the last user message:

- none: a plain text answer;
- ``[tool]``: the model asks for the tool ``get_weather`` with ``{"city": "Paris"}`` (OpenAI
  ``tool_calls`` / ``finish_reason: "tool_calls"``, Anthropic a ``tool_use`` block / ``stop_reason:
  "tool_use"``);
- ``[error:NNN]``: HTTP status NNN with the provider's error body (``{"error": {...}}`` for OpenAI,
  ``{"type": "error", "error": {...}, "request_id": ...}`` for Anthropic) and its request-id header;
  ``retry-after-ms: 1`` so a retrying client retries at once;
- ``[stall]``: for a stream, the first events and then nothing for ``stall_s`` seconds (or until
  ``stop()``); for a plain call, no answer for as long;
- ``[stream-error]`` (Anthropic streams): an ``error`` event in the middle of the stream.

Every request is kept in ``requests`` (path, lower-cased headers, JSON body).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ANTHROPIC_USAGE", "OPENAI_USAGE", "TOOL_ARGS", "LLMServer", "Received"]

OPENAI_USAGE = {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28}
ANTHROPIC_USAGE = {"input_tokens": 19, "output_tokens": 9}
TOOL_ARGS = {"city": "Paris"}
ANSWER = "Bonjour from the local model"
_ERROR_TAG = re.compile(r"\[error:(\d{3})\]")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _response_model(requested: str) -> str:
    """The server answers with a dated snapshot of the requested model, as the real APIs do."""
    return f"{requested}-2026-01-01"


class LLMServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, stall_s: float = 30.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stall_s = stall_s
        self.released = threading.Event()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._counter = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> LLMServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="llm-wire-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()  # stalled answers end now
        self.shutdown()
        self.server_close()

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def keep(self, request: Received) -> str:
        with self._lock:
            self.requests.append(request)
            self._counter += 1
            return f"{self._counter:06d}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LLMServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing ---------------------------------------------------------------------------------
    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_events(self, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_events(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _stall(self) -> None:
        self.server.released.wait(self.server.stall_s)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        path = self.path.split("?")[0]
        number = self.server.keep(Received(path, {k.lower(): v for k, v in self.headers.items()}, body))
        try:
            if path == "/v1/chat/completions":
                self._openai(body, number)
            elif path == "/v1/messages":
                self._anthropic(body, number)
            else:
                self._json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
            self.close_connection = True

    # -- OpenAI chat completions ----------------------------------------------------------------------
    def _openai(self, body: dict[str, Any], number: str) -> None:
        text = _last_user_text(body)
        headers = {"x-request-id": f"req_oai_{number}", "openai-processing-ms": "3"}
        if match := _ERROR_TAG.search(text):
            status = int(match.group(1))
            kind = {400: ("invalid_request_error", "invalid_value"), 401: ("invalid_request_error", "invalid_api_key"),
                    429: ("requests", "rate_limit_exceeded")}.get(status, ("server_error", None))
            message = ("The server had an error while processing your request. Sorry about that!" if status >= 500
                       else f"Invalid value for 'temperature': request {number} was refused.")
            self._json(status, {"error": {"message": message, "type": kind[0], "param": None, "code": kind[1]}},
                       {**headers, "retry-after-ms": "1"})
            return
        model = _response_model(str(body.get("model")))
        completion_id = f"chatcmpl-{number}"
        tool = "[tool]" in text
        if not body.get("stream"):
            if "[stall]" in text:
                self._stall()
            message: dict[str, Any] = {"role": "assistant", "content": None if tool else ANSWER, "refusal": None}
            if tool:
                message["tool_calls"] = [{"id": f"call_{number}", "type": "function",
                                          "function": {"name": "get_weather", "arguments": json.dumps(TOOL_ARGS)}}]
            self._json(200, {
                "id": completion_id, "object": "chat.completion", "created": 1767225600, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "tool_calls" if tool else "stop"}],
                "usage": dict(OPENAI_USAGE), "system_fingerprint": "fp_local", "service_tier": "default",
            }, headers)
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            value: dict[str, Any] = {
                "id": completion_id, "object": "chat.completion.chunk", "created": 1767225600, "model": model,
                "system_fingerprint": "fp_local",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                value["usage"] = None
            return value

        events = [chunk({"role": "assistant", "content": None if tool else "", "refusal": None})]
        if tool:
            arguments = json.dumps(TOOL_ARGS)
            events.append(chunk({"tool_calls": [{"index": 0, "id": f"call_{number}", "type": "function",
                                                 "function": {"name": "get_weather", "arguments": ""}}]}))
            events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                       for part in (arguments[:9], arguments[9:])]
        else:
            events += [chunk({"content": part}) for part in ("Bonjour ", "from the ", "local model")]
        events.append(chunk({}, "tool_calls" if tool else "stop"))
        if include_usage:
            events.append({"id": completion_id, "object": "chat.completion.chunk", "created": 1767225600,
                           "model": model, "system_fingerprint": "fp_local", "choices": [],
                           "usage": dict(OPENAI_USAGE)})
        self._start_events(headers)
        for index, event in enumerate(events):
            if index == 2 and "[stall]" in text:
                self._stall()
            self._chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        self._chunk(b"data: [DONE]\n\n")
        self._end_events()

    # -- Anthropic messages ---------------------------------------------------------------------------
    def _anthropic(self, body: dict[str, Any], number: str) -> None:
        text = _last_user_text(body)
        headers = {"request-id": f"req_ant_{number}"}
        if match := _ERROR_TAG.search(text):
            status = int(match.group(1))
            kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error",
                    529: "overloaded_error"}.get(status, "api_error")
            message = "Overloaded" if status == 529 else (
                "Internal server error" if status >= 500 else f"max_tokens: request {number} was refused")
            self._json(status, {"type": "error", "error": {"type": kind, "message": message},
                                "request_id": f"req_ant_{number}"}, {**headers, "retry-after-ms": "1"})
            return
        model = _response_model(str(body.get("model")))
        message_id = f"msg_{number}"
        tool = "[tool]" in text
        usage = dict(ANTHROPIC_USAGE)
        if not body.get("stream"):
            if "[stall]" in text:
                self._stall()
            content: list[dict[str, Any]] = [{"type": "text", "text": "Let me look." if tool else ANSWER}]
            if tool:
                content.append({"type": "tool_use", "id": f"toolu_{number}", "name": "get_weather",
                                "input": dict(TOOL_ARGS)})
            self._json(200, {
                "id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
                "stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None,
                "usage": {**usage, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            }, headers)
            return
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": {
                "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("ping", {"type": "ping"}),
        ]
        parts = ("Let me ", "look.") if tool else ("Bonjour ", "from the ", "local model")
        events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": part}}) for part in parts]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        if tool:
            arguments = json.dumps(TOOL_ARGS)
            events.append(("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
                "type": "tool_use", "id": f"toolu_{number}", "name": "get_weather", "input": {}}}))
            events += [("content_block_delta", {"type": "content_block_delta", "index": 1,
                                                "delta": {"type": "input_json_delta", "partial_json": part}})
                       for part in (arguments[:9], arguments[9:])]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": 1}))
        events += [
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": usage["output_tokens"]}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._start_events(headers)
        for index, (name, event) in enumerate(events):
            if index == 4:
                if "[stall]" in text:
                    self._stall()
                if "[stream-error]" in text:
                    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                    self._chunk(b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n")
                    self._end_events()
                    return
            self._chunk(f"event: {name}\n".encode() + b"data: " + json.dumps(event).encode() + b"\n\n")
        self._end_events()
