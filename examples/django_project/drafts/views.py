"""The three endpoints, in the public-wrapper pattern: who calls (401) and whether the draft or
flow belongs to their tenant (403) is checked before anything is started or signalled."""

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
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
from cruxcelery.integrations.django import describe_flow, signal_errors

from .flows import WriterArgs, writer


def _error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _caller(request: HttpRequest) -> dict[str, str] | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    caller = settings.DRAFTS_API_TOKENS.get(token) if scheme.lower() == "bearer" else None
    return caller if isinstance(caller, dict) else None


def _body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON, or nested too deep to read
        return None


def _owned_flow(flow_id: str, caller: dict[str, str]) -> FlowSnapshot | JsonResponse:
    try:
        snapshot = writer.snapshot(flow_id)
    except (FlowNotFound, InvalidFlowId):
        return _error(404, f"no flow {flow_id!r}")
    if snapshot.name != "writer" or snapshot.input.get("tenant") != caller["tenant"]:
        return _error(403, "this flow belongs to another tenant")
    return snapshot


@csrf_exempt
@require_POST
def start_writer(request: HttpRequest, draft_id: str) -> JsonResponse:
    caller = _caller(request)
    if caller is None:
        return _error(401, "missing or unknown bearer token")
    owner = settings.DRAFTS.get(draft_id)
    if owner is None:
        return _error(404, f"no draft {draft_id!r}")
    if owner != caller["tenant"]:
        return _error(403, f"draft {draft_id!r} belongs to another tenant")
    body = _body(request)
    if request.body and body is None:
        return _error(400, "the body must be JSON")
    try:
        args = WriterArgs.model_validate({**(body if isinstance(body, dict) else {}),
                                          "draft_id": draft_id, "tenant": caller["tenant"]})
    except ValidationError as exc:
        return _error(400, "invalid arguments", errors=validation_errors(exc))
    key = request.headers.get("Idempotency-Key")
    try:  # keys are the caller's tenant's: another tenant's key is just another key
        flow_id = writer.start(args, idempotency_key=f"{caller['tenant']}:{key}" if key else None)
    except InvalidFlowId as exc:
        return _error(400, f"invalid Idempotency-Key: {exc}")
    except IdempotencyConflict as exc:
        return _error(409, str(exc))
    return JsonResponse({"flowId": flow_id, "status": "pending"}, status=202)


@csrf_exempt
@require_POST
def approve(request: HttpRequest, flow_id: str) -> JsonResponse:
    caller = _caller(request)
    if caller is None:
        return _error(401, "missing or unknown bearer token")
    found = _owned_flow(flow_id, caller)
    if not isinstance(found, FlowSnapshot):
        return found
    payload = _body(request)
    if not isinstance(payload, dict):
        return _error(400, "the body must be a JSON object", errors=[
            {"loc": [], "msg": "Input should be a JSON object", "type": "dict_type"}])
    try:
        writer.signal(flow_id, "approval", payload, signal_id=request.headers.get("Idempotency-Key"))
    except SignalRejected as exc:
        return JsonResponse(signal_errors(exc), status=400)
    except FlowNotWaiting as exc:
        return _error(409, str(exc))
    return JsonResponse({"flowId": flow_id, "accepted": True}, status=202)


@require_GET
def show_flow(request: HttpRequest, flow_id: str) -> JsonResponse:
    caller = _caller(request)
    if caller is None:
        return _error(401, "missing or unknown bearer token")
    found = _owned_flow(flow_id, caller)
    if not isinstance(found, FlowSnapshot):
        return found
    return JsonResponse(describe_flow(found))
