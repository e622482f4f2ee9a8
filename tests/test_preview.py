"""Every value becomes a bounded JSON value."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from pydantic import BaseModel

from cruxcelery.telemetry.preview import MAX_ITEMS, MAX_STRING, json_safe


def _roundtrips(value):
    return json.loads(json.dumps(value)) == value


def test_cycles_become_markers():
    a: dict = {"name": "a"}
    a["self"] = a
    items: list = [1]
    items.append(items)
    assert json_safe(a) == {"name": "a", "self": "[Circular]"}
    assert json_safe(items) == [1, "[Circular]"]


def test_huge_strings_lists_and_objects_are_cut_with_markers():
    text = json_safe("x" * (MAX_STRING + 10))
    assert len(text) < MAX_STRING + 100 and text.endswith("[truncated 10 chars]")
    listed = json_safe(list(range(1000)))
    assert len(listed) == MAX_ITEMS + 1 and listed[-1] == "[... 800 more items]"
    keyed = json_safe({f"k{i}": i for i in range(500)})
    assert len(keyed) == MAX_ITEMS + 1 and "[truncated]" in keyed


def test_depth_is_bounded():
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["next"] = {}
        node = node["next"]
    out = json.dumps(json_safe(deep))
    assert "MaxDepth" in out


def test_bytes_sets_datetimes_models_dataclasses_and_objects_become_safe():
    class Model(BaseModel):
        when: dt.datetime

    @dataclasses.dataclass
    class Data:
        tags: set[str]

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    value = {
        "bytes": b"\x00\x01binary", "set": {"b", "a"}, "when": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        "model": Model(when=dt.datetime(2026, 1, 2, tzinfo=dt.UTC)), "data": Data(tags={"t"}),
        "object": Opaque(), "nan": float("nan"), 3: "int key",
    }
    out = json_safe(value)
    assert _roundtrips(out)
    assert out["bytes"]["$bytes"] == 8 and out["set"] == ["a", "b"]
    assert out["model"] == {"when": "2026-01-02T00:00:00+00:00"} and out["data"] == {"tags": ["t"]}
    assert out["object"] == "[Opaque] <opaque>" and out["nan"] == "nan" and out["3"] == "int key"


def test_a_hostile_repr_never_raises():
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "unserializable" in json_safe(Hostile())
