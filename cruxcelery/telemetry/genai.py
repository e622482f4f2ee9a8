"""OpenTelemetry GenAI semantic conventions (``gen_ai.*``, status Development) for the OTel side
of agent spans: inference spans ``{operation} {model}``, tool spans ``execute_tool {name}``,
agent roots ``invoke_agent {name}``. Pure functions of plain values: no Celery, no settings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opentelemetry.util.types import AttributeValue

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_DESCRIPTION = "gen_ai.tool.description"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
ERROR_TYPE = "error.type"

AGENT_PRIMITIVE = "agent.run"
TOOL_PRIMITIVE = "tool.call"

# request parameters an application may pass as generation attributes, and their GenAI names
_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "maxTokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "topP": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "conversation_id": "gen_ai.conversation.id",
    "conversationId": "gen_ai.conversation.id",
}


def inference_name(operation: str, model: str) -> str:
    """``chat gpt-4o``: the span name the conventions give an inference call."""
    return f"{operation} {model}".strip()


def inference_attributes(operation: str, provider: str, model: str,
                         attributes: dict[str, Any] | None = None) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {OPERATION: operation, PROVIDER: provider, REQUEST_MODEL: model}
    for key, value in (attributes or {}).items():
        name = _REQUEST_PARAMS.get(key)
        if name is not None and isinstance(value, str | bool | int | float):
            out[name] = value
    return out


def response_attributes(
    *, response_model: str | None, response_id: str | None, finish_reasons: Sequence[str] | None,
    input_tokens: int | None, output_tokens: int | None,
) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    if response_model:
        out[RESPONSE_MODEL] = response_model
    if response_id:
        out[RESPONSE_ID] = response_id
    if finish_reasons:
        out[FINISH_REASONS] = tuple(str(reason) for reason in finish_reasons)
    if input_tokens is not None:
        out[INPUT_TOKENS] = int(input_tokens)
    if output_tokens is not None:
        out[OUTPUT_TOKENS] = int(output_tokens)
    return out


def tool_name(name: str) -> str:
    return f"execute_tool {name}"


def tool_attributes(name: str, call_id: str | None, description: str | None) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {OPERATION: "execute_tool", TOOL_NAME: name, TOOL_TYPE: "function"}
    if call_id:
        out[TOOL_CALL_ID] = call_id
    if description:
        out[TOOL_DESCRIPTION] = description
    return out


def agent_name(name: str) -> str:
    return f"invoke_agent {name}"


def agent_attributes(name: str, agent_id: Any) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {OPERATION: "invoke_agent", AGENT_NAME: name}
    if isinstance(agent_id, str) and agent_id:
        out[AGENT_ID] = agent_id
    return out


def span_name(name: str, primitive: str) -> str:
    """The OTel name of a Crux span: ``invoke_agent {name}`` for an agent root, else its name."""
    return agent_name(name) if primitive == AGENT_PRIMITIVE else name


def span_attributes(name: str, primitive: str, attributes: dict[str, Any]) -> dict[str, AttributeValue]:
    """The GenAI attributes a Crux span of ``primitive`` adds to its OTel twin (an agent root's)."""
    if primitive == AGENT_PRIMITIVE:
        return agent_attributes(name, attributes.get("agentId"))
    return {}


def as_json(value: Any) -> str:
    """A JSON string for an opt-in content attribute (``gen_ai.input.messages``)."""
    try:
        return json.dumps(value, separators=(",", ":"), default=str)[:65536]
    except (TypeError, ValueError):
        return json.dumps(str(value))[:65536]
