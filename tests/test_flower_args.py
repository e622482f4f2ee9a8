"""How an action's args travel and what Flower is shown of them: ``SecretStr`` fields travel as
their secret value and are rebuilt by the worker's validation; ``argsrepr``/``kwargsrepr`` star
them, redact secret-looking keys and summarise long values; results keep secrets starred."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

from cruxcelery.core import args as action_args


class Inner(BaseModel):
    credential: SecretStr


class Outer(BaseModel):
    user: str
    credential: SecretStr
    nested: Inner
    many: list[Inner] = []
    password: str = "hunter2"
    blob: str = ""


def _value() -> Outer:
    return Outer(user="ann", credential="s3cr3t-top", nested=Inner(credential="s3cr3t-nested"),
                 many=[Inner(credential="s3cr3t-listed")], blob="b" * 500)


def test_secret_fields_travel_as_their_value_and_are_rebuilt_in_the_worker():
    positional, keywords = action_args.to_message(_value())
    assert positional == ()
    assert keywords["credential"] == "s3cr3t-top"
    assert keywords["nested"] == {"credential": "s3cr3t-nested"}
    assert keywords["many"] == [{"credential": "s3cr3t-listed"}]
    rebuilt = action_args.coerce(Outer, (), keywords, "t")
    assert isinstance(rebuilt.credential, SecretStr) and rebuilt.credential.get_secret_value() == "s3cr3t-top"
    assert rebuilt.many[0].credential.get_secret_value() == "s3cr3t-listed"


def test_a_model_of_another_type_is_revalidated_with_its_secrets():
    class Loose(BaseModel):
        credential: SecretStr

    value = action_args.coerce(Inner, (Loose(credential="from-other"),), {}, "t")
    assert value.credential.get_secret_value() == "from-other"
    assert action_args.coerce(None, (Loose(credential="plain"),), {}, "t") == {"credential": "plain"}


def test_results_keep_secrets_starred():
    assert action_args.to_wire(Inner(credential="never"))["credential"] == "**********"


def test_flower_reprs_star_redact_and_summarise():
    reprs = action_args.reprs(_value(), {"crux.run_id": "run_1"})
    shown = reprs["kwargsrepr"]
    assert reprs["argsrepr"] == "()"
    for secret in ("s3cr3t-top", "s3cr3t-nested", "s3cr3t-listed", "hunter2"):
        assert secret not in shown
    assert "'credential': '**********'" in shown and "'password': '[REDACTED]'" in shown
    assert "…(+420 chars)" in shown and "'crux.run_id': 'run_1'" in shown
    assert len(action_args.reprs({"items": list(range(1000)), "text": "x" * 10_000})["kwargsrepr"]) <= 1024


def test_plain_positional_args_are_shown_as_a_tuple():
    reprs = action_args.reprs((1, {"api_key": "k"}))
    assert reprs["argsrepr"] == "(1, {'api_key': '[REDACTED]'})" and reprs["kwargsrepr"] == "{}"


def test_ids_are_added_inside_a_kwargsrepr_once():
    ids = {"crux.run_id": "r", "crux.trace_id": "t"}
    added = action_args.with_ids("{'a': 1}", ids)
    assert added == "{'a': 1, 'crux.run_id': 'r', 'crux.trace_id': 't'}"
    assert action_args.with_ids(added, ids) == added
    assert action_args.with_ids("{}", ids) == "{'crux.run_id': 'r', 'crux.trace_id': 't'}"
