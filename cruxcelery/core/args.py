"""Action arguments: one dict or model instance, or keywords; validated by the action's model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError

from cruxcelery.errors import InvalidArgs, structured_errors
from cruxcelery.telemetry.evidence import redact


def coerce(model: type[BaseModel] | None, args: tuple[Any, ...], kwargs: dict[str, Any],
           task_name: str) -> Any:
    """The validated argument: a model instance (or, without a model, the dict). Raises
    ``InvalidArgs`` with the validation message."""
    if args and kwargs:
        raise InvalidArgs(f"{task_name}: pass one dict or model, or keywords, not both")
    if len(args) > 1:
        raise InvalidArgs(f"{task_name}: takes one argument (a dict or model), got {len(args)}")
    data: Any = args[0] if args else kwargs
    if model is None:  # any one JSON value (a chord body gets a list), or the keywords
        return to_wire(data, reveal=True)
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = to_wire(data, reveal=True)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidArgs(f"{task_name}: invalid args: {exc}", structured_errors(exc)) from None


def to_message(value: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` to publish: a dict (or model) travels as keywords, Flower shows them by
    name; any other value as the one positional argument."""
    wire = to_wire(value, reveal=True)
    return ((), wire) if isinstance(wire, dict) else ((wire,), {})


def to_wire(value: Any, *, reveal: bool = False) -> Any:
    """What travels as JSON: a model's JSON dump, anything else as it is. With ``reveal`` (the
    arguments of a message) ``SecretStr``/``SecretBytes`` fields travel as their secret value, so
    the worker's validation rebuilds them; without it (results) they stay starred."""
    if not isinstance(value, BaseModel):
        return value
    dumped = value.model_dump(mode="json")
    return _reveal(value, dumped, 0) if reveal else dumped


def _reveal(value: Any, dumped: Any, depth: int) -> Any:
    """``dumped`` (``value``'s JSON dump) with each secret's stars replaced by its value."""
    if depth > 16:
        return dumped
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode("utf-8", "surrogateescape")
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        for name in type(value).model_fields:
            if name in dumped:
                dumped[name] = _reveal(getattr(value, name, None), dumped[name], depth + 1)
    elif isinstance(value, dict) and isinstance(dumped, dict):
        for key, item in value.items():
            if isinstance(key, str) and key in dumped:
                dumped[key] = _reveal(item, dumped[key], depth + 1)
    elif isinstance(value, list | tuple) and isinstance(dumped, list) and len(value) == len(dumped):
        dumped[:] = [_reveal(item, out, depth + 1) for item, out in zip(value, dumped, strict=True)]
    return dumped


# -- what Flower shows: argsrepr / kwargsrepr --------------------------------------------------------

REPR_MAX = 1024
_STRING_MAX = 80
_ITEMS_MAX = 10


def reprs(value: Any, ids: dict[str, str] | None = None) -> dict[str, str]:
    """``argsrepr``/``kwargsrepr`` of a validated argument (a model instance, a dict or one value)
    as ``apply_async`` options: secrets starred (``SecretStr``), values under secret-looking keys
    redacted, long strings and lists summarised; ``ids`` (the run and trace ids) appended."""
    positional = isinstance(value, tuple)  # a plain task's positional args
    shown = redact(value.model_dump(mode="json") if isinstance(value, BaseModel) else value)
    summary = _summarise(shown, 0)
    if positional and isinstance(summary, list):
        return {"argsrepr": _capped(repr(tuple(summary))), "kwargsrepr": _capped(repr(dict(ids or {})))}
    if isinstance(summary, dict):
        return {"argsrepr": "()", "kwargsrepr": _capped(repr({**summary, **(ids or {})}))}
    return {"argsrepr": _capped(repr((summary,))), "kwargsrepr": _capped(repr(dict(ids or {})))}


def with_ids(kwargsrepr: str, ids: dict[str, str]) -> str:
    """A ``kwargsrepr`` (a dict's repr) with ``ids`` added inside it."""
    extra = ", ".join(f"{k!r}: {v!r}" for k, v in ids.items())
    if not extra or f"{next(iter(ids))!r}:" in kwargsrepr:
        return kwargsrepr
    if kwargsrepr in ("", "{}"):
        return "{" + extra + "}"
    if kwargsrepr.endswith("}"):
        return kwargsrepr[:-1] + ", " + extra + "}"
    return f"{kwargsrepr} {extra}"


def _summarise(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= _STRING_MAX else f"{value[:_STRING_MAX]}…(+{len(value) - _STRING_MAX} chars)"
    if depth >= 4 and isinstance(value, dict | list):
        return f"<{type(value).__name__} of {len(value)}>"
    if isinstance(value, dict):
        items = list(value.items())
        out = {k: _summarise(v, depth + 1) for k, v in items[:_ITEMS_MAX]}
        if len(items) > _ITEMS_MAX:
            out["…"] = f"+{len(items) - _ITEMS_MAX} keys"
        return out
    if isinstance(value, list):
        head = [_summarise(v, depth + 1) for v in value[:_ITEMS_MAX]]
        return head + ([f"…(+{len(value) - _ITEMS_MAX} items)"] if len(value) > _ITEMS_MAX else [])
    return value


def _capped(text: str) -> str:
    return text if len(text) <= REPR_MAX else text[: REPR_MAX - 1] + "…"
