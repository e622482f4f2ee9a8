"""The Flask example app: ``flask --app examples.flask_app.app:create_app run``.

- ``POST /drafts/<draft_id>/writer`` starts the writer flow behind an auth check (401) and a
  tenant check (403): the public-wrapper pattern; nothing is enqueued when a check fails.
- ``POST /flows/<flow_id>/approval`` signals the approval: 400 with pydantic's per-field errors
  when the payload is invalid (the flow stays suspended), 409 once the flow is finished.
- ``GET /flows/<flow_id>``: status, steps, what the flow waits for.

Configuration: ``DEFAULTS`` below, then ``FLASK_*`` environment variables (``FLASK_CRUX_KEY_PREFIX``
-> ``CRUX_KEY_PREFIX``, ``FLASK_CELERY_TASK_DEFAULT_QUEUE`` -> ``CELERY_TASK_DEFAULT_QUEUE``), then
``create_app(config)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from cruxcelery import (
    FlowNotFound,
    FlowNotWaiting,
    FlowSnapshot,
    IdempotencyConflict,
    InvalidFlowId,
    SignalRejected,
)
from cruxcelery.integrations.common import validation_errors
from cruxcelery.integrations.flask import CruxCelery, describe_flow, signal_errors

from .flows import Writer, WriterArgs, define_writer

REDIS_URL = os.environ.get("CRUX_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"

DEFAULTS: dict[str, Any] = {
    "CELERY_BROKER_URL": REDIS_URL,
    "CELERY_RESULT_BACKEND": REDIS_URL,
    "CELERY_RESULT_EXPIRES": 3600,
    "CRUX_REDIS_URL": REDIS_URL,
    "WRITER_SIGNATURE": "the Flask example",
    # Stand-ins for the app's own authentication and data: bearer token -> user, draft -> tenant.
    "API_TOKENS": {"token-acme": {"user": "alice", "tenant": "acme"},
                   "token-globex": {"user": "bob", "tenant": "globex"}},
    "DRAFTS": {"d1": "acme", "d2": "acme", "g1": "globex"},
}

crux_celery = CruxCelery()
api = Blueprint("writer_api", __name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env()
    app.config.update(config or {})
    crux_celery.init_app(app)
    app.extensions["writer"] = define_writer(crux_celery.state(app).crux)
    app.register_blueprint(api)
    return app


def _writer() -> Writer:
    writer: Writer = current_app.extensions["writer"]
    return writer


def _error(status: int, message: str, **extra: Any) -> ResponseReturnValue:
    return jsonify({"error": message, **extra}), status


def _caller() -> dict[str, str] | None:
    """The authenticated caller (``Authorization: Bearer <token>``), or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    caller = current_app.config["API_TOKENS"].get(token) if scheme.lower() == "bearer" else None
    return caller if isinstance(caller, dict) else None


def _owned_flow(flow_id: str, caller: dict[str, str]) -> FlowSnapshot | ResponseReturnValue:
    """The flow's snapshot if it is a writer flow of the caller's tenant, else the error."""
    try:
        snapshot = _writer().flow.snapshot(flow_id)
    except (FlowNotFound, InvalidFlowId):
        return _error(404, f"no flow {flow_id!r}")
    if snapshot.name != "writer" or snapshot.input.get("tenant") != caller["tenant"]:
        return _error(403, "this flow belongs to another tenant")
    return snapshot


def _json_body() -> Any:
    """The request's JSON, or ``None`` when it is not JSON (too deeply nested included)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


@api.post("/drafts/<draft_id>/writer")
def start_writer(draft_id: str) -> ResponseReturnValue:
    caller = _caller()
    if caller is None:
        return _error(401, "missing or unknown bearer token")
    owner = current_app.config["DRAFTS"].get(draft_id)
    if owner is None:
        return _error(404, f"no draft {draft_id!r}")
    if owner != caller["tenant"]:
        return _error(403, f"draft {draft_id!r} belongs to another tenant")
    body = _json_body()
    if request.get_data() and body is None:
        return _error(400, "the body must be JSON")
    try:
        args = WriterArgs.model_validate({**(body if isinstance(body, dict) else {}),
                                          "draft_id": draft_id, "tenant": caller["tenant"]})
    except ValidationError as exc:
        return _error(400, "invalid arguments", errors=validation_errors(exc))
    key = request.headers.get("Idempotency-Key")
    try:  # keys are the caller's tenant's: another tenant's key is just another key
        flow_id = _writer().flow.start(args, idempotency_key=f"{caller['tenant']}:{key}" if key else None)
    except InvalidFlowId as exc:
        return _error(400, f"invalid Idempotency-Key: {exc}")
    except IdempotencyConflict as exc:
        return _error(409, str(exc))
    return jsonify({"flowId": flow_id, "status": "pending"}), 202


@api.post("/flows/<flow_id>/approval")
def approve(flow_id: str) -> ResponseReturnValue:
    caller = _caller()
    if caller is None:
        return _error(401, "missing or unknown bearer token")
    found = _owned_flow(flow_id, caller)
    if not isinstance(found, FlowSnapshot):
        return found
    payload = _json_body()
    if not isinstance(payload, dict):
        return _error(400, "the body must be a JSON object", errors=[
            {"loc": [], "msg": "Input should be a JSON object", "type": "dict_type"}])
    try:
        _writer().flow.signal(flow_id, "approval", payload, signal_id=request.headers.get("Idempotency-Key"))
    except SignalRejected as exc:
        return jsonify(signal_errors(exc)), 400
    except FlowNotWaiting as exc:
        return _error(409, str(exc))
    return jsonify({"flowId": flow_id, "accepted": True}), 202


@api.get("/flows/<flow_id>")
def show_flow(flow_id: str) -> ResponseReturnValue:
    caller = _caller()
    if caller is None:
        return _error(401, "missing or unknown bearer token")
    found = _owned_flow(flow_id, caller)
    if not isinstance(found, FlowSnapshot):
        return found
    return jsonify(describe_flow(found))
