"""Record a user's ``litellm.completion`` / ``litellm.acompletion`` calls as Crux generations (the
``litellm`` extra: ``pip install 'cruxcelery[litellm]'``).

::

    import litellm
    from cruxcelery.integrations.llm.litellm import instrument_litellm

    instrument_litellm()

    @crux.action(name="answer")
    def answer(ctx, args):
        return litellm.completion(model="openai/gpt-4o", messages=[...])    # recorded

``instrument_litellm()`` replaces ``litellm.completion`` and ``litellm.acompletion`` in the
``litellm`` module: call them as ``litellm.completion(...)`` (a name imported with ``from litellm
import completion`` before instrumenting keeps the original). A plain call is a
``generation.call`` span; ``stream=True`` a ``generation.stream`` span ended by the real end of the
stream. The span's model and provider are LiteLLM's reading of the model string
(``openai/gpt-4o`` is model ``gpt-4o``, provider ``openai``; providers named as the GenAI
conventions name them where they differ, such as ``aws.bedrock``); the response model, finish
reasons, token usage (streams: with ``stream_options={"include_usage": True}``), the cost LiteLLM
computes when it knows the model's price, and the tool calls the model asked for
(``executed: false`` unless the action runs a tool with that id) are recorded. Message content only
with ``CRUX_RECORD_CONTENT=true``.

Outside a Crux action the functions are plain pass-throughs. LiteLLM is imported only by
``instrument_litellm``: this module imports without the extra installed."""

from __future__ import annotations

from typing import Any

from cruxcelery.agents.generation import Generation, GenerationStream
from cruxcelery.integrations.llm.calls import Opener, open_chat, recorded_async_create, recorded_create
from cruxcelery.integrations.llm.common import given, is_patched, message_list, number, patch, resolve_timeout, unpatch
from cruxcelery.integrations.llm.openai import ChatChunks, report_completion

__all__ = ["instrument_litellm", "is_instrumented", "uninstrument_litellm"]

SOURCE = "litellm.completion"
# LiteLLM's provider names -> the GenAI conventions' gen_ai.provider.name, where they differ
_PROVIDERS = {
    "azure": "azure.ai.openai", "azure_ai": "azure.ai.inference", "bedrock": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai", "vertex_ai_beta": "gcp.vertex_ai", "gemini": "gcp.gemini",
    "mistral": "mistral_ai", "xai": "x_ai", "watsonx": "ibm.watsonx.ai",
}


def instrument_litellm(*, timeout_s: float | None = None) -> None:
    """Record ``litellm.completion`` and ``litellm.acompletion``. Idempotent. ``timeout_s`` is the
    deadline a call's span records (default: the call's ``timeout`` or LiteLLM's
    ``request_timeout``, times one plus ``num_retries``)."""
    litellm = _litellm()
    opener = _opener(litellm, timeout_s)

    def chunks() -> _LiteLLMChunks:
        return _LiteLLMChunks(litellm)

    patch(litellm, "completion", lambda original: recorded_create(original, opener, _report, chunks, _keywords))
    patch(litellm, "acompletion",
          lambda original: recorded_async_create(original, opener, _report, chunks, _keywords))


def uninstrument_litellm() -> None:
    litellm = _litellm()
    unpatch(litellm, "completion")
    unpatch(litellm, "acompletion")


def is_instrumented() -> bool:
    return is_patched(_litellm().completion)


def _litellm() -> Any:
    try:
        import litellm
    except ImportError as exc:
        raise ImportError("cruxcelery.integrations.litellm needs LiteLLM: pip install 'cruxcelery[litellm]'") from exc
    return litellm


def _model_and_provider(litellm: Any, kwargs: dict[str, Any]) -> tuple[str, str]:
    model = str(kwargs.get("model") or "unknown")
    try:
        bare, provider, _key, _base = litellm.get_llm_provider(
            model=model, custom_llm_provider=kwargs.get("custom_llm_provider"), api_base=kwargs.get("api_base"))
    except Exception:  # a model LiteLLM cannot place: it will say so when called
        return model, "litellm"
    return str(bare), _PROVIDERS.get(str(provider), str(provider))


def _opener(litellm: Any, timeout_s: float | None) -> Opener:
    def open_call(kwargs: dict[str, Any], stream: bool) -> Generation | GenerationStream:
        model, provider = _model_and_provider(litellm, kwargs)
        timeout = kwargs.get("timeout") if given(kwargs.get("timeout")) else kwargs.get("request_timeout")
        retries = kwargs.get("num_retries", kwargs.get("max_retries", getattr(litellm, "num_retries", 0)))
        return open_chat(kwargs, stream, source=SOURCE, model=model, provider=provider,
                         messages=message_list(kwargs.get("messages")),
                         timeout_s=resolve_timeout(timeout_s, timeout, getattr(litellm, "request_timeout", None),
                                                   retries))

    return open_call


def _keywords(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``completion(model, messages, ...)`` as keywords."""
    if args and "model" not in kwargs:
        return (), {"model": args[0], **({"messages": args[1]} if len(args) > 1 else {}), **kwargs}
    return args, kwargs


def _report(gen: Generation | GenerationStream, response: Any) -> None:
    report_completion(gen, response)
    hidden = getattr(response, "_hidden_params", None)
    cost = number(hidden.get("response_cost")) if isinstance(hidden, dict) else None
    if cost is not None:
        gen.finish(cost_usd=cost)


class _LiteLLMChunks(ChatChunks):
    """A LiteLLM stream's chunks; the cost, when LiteLLM knows the model's price, at the end."""

    def __init__(self, litellm: Any) -> None:
        super().__init__()
        self._litellm = litellm
        self._chunks: list[Any] = []

    def add(self, chunk: Any) -> None:
        super().add(chunk)
        if len(self._chunks) < 10_000:
            self._chunks.append(chunk)

    def report(self, stream: GenerationStream, complete: bool) -> None:
        if complete and self.usage is not None:
            self.cost_usd = self._cost()
        super().report(stream, complete)

    def _cost(self) -> float | None:
        try:
            built = self._litellm.stream_chunk_builder(self._chunks)
            return number(self._litellm.completion_cost(completion_response=built)) if built is not None else None
        except Exception:  # LiteLLM knows no price for this model
            return None
