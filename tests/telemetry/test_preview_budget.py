"""Previews are bounded per record, not only per node: a huge value stops the walk early, marked."""

from __future__ import annotations

import json

from cruxcelery.telemetry.preview import (
    BUDGET_MARKER,
    MAX_ITEMS,
    MAX_NODES,
    MAX_STRING,
    MAX_TOTAL_CHARS,
    json_safe,
)


def _count_leaves(value: object) -> int:
    if isinstance(value, list):
        return sum(_count_leaves(item) for item in value)
    if isinstance(value, dict):
        return sum(_count_leaves(item) for item in value.values())
    return 1


def test_two_million_integers_keep_the_first_200_and_say_how_many_more() -> None:
    out = json_safe(list(range(2_000_000)))
    assert out[:MAX_ITEMS] == list(range(MAX_ITEMS)) and out[-1] == f"[... {2_000_000 - MAX_ITEMS} more items]"


def test_a_huge_tuple_and_set_are_cut_the_same_way() -> None:
    assert json_safe(tuple(range(1000)))[-1] == "[... 800 more items]"
    out = json_safe(set(range(100_000)))
    assert len(out) == MAX_ITEMS + 1 and out[-1] == "[... 99800 more items]"


def test_a_wide_nested_value_stops_at_the_node_budget_and_marks_the_cut() -> None:
    nested = [[list(range(200)) for _ in range(200)] for _ in range(10)]  # 400,000 integers
    out = json_safe(nested)
    assert _count_leaves(out) <= MAX_NODES + 200
    assert BUDGET_MARKER in json.dumps(out)


def test_a_wide_nested_mapping_marks_the_cut_under_the_truncated_key() -> None:
    nested = {f"k{i}": {f"j{j}": list(range(200)) for j in range(200)} for i in range(10)}
    out = json_safe(nested)
    assert any(str(value).startswith(BUDGET_MARKER) for value in out.values() if isinstance(value, str))
    assert BUDGET_MARKER in json.dumps(out)


def test_strings_share_one_character_budget() -> None:
    out = json_safe(["y" * MAX_STRING] * 20)
    kept = sum(len(item) for item in out if isinstance(item, str) and item.startswith("y"))
    assert kept <= MAX_TOTAL_CHARS + 20 * 40
    assert BUDGET_MARKER in out[-1]


def test_per_node_rules_still_hold_within_the_budget() -> None:
    assert json_safe("x" * (MAX_STRING + 5)).endswith("...[truncated 5 chars]")
    assert len(json_safe({f"k{i}": i for i in range(500)})) == MAX_ITEMS + 1
    looped: list[object] = [1]
    looped.append(looped)
    assert json_safe(looped) == [1, "[Circular]"]
