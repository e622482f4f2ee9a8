"""Action arguments: one dict or model instance, or keywords; validated by the action's model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from cruxcelery.errors import InvalidArgs, structured_errors


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
        return data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidArgs(f"{task_name}: invalid args: {exc}", structured_errors(exc)) from None


def to_message(value: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` to publish: a dict (or model) travels as keywords, Flower shows them by
    name; any other value as the one positional argument."""
    wire = to_wire(value)
    return ((), wire) if isinstance(wire, dict) else ((wire,), {})


def to_wire(value: Any) -> Any:
    """What travels as JSON: a model's JSON dump, anything else as it is."""
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
