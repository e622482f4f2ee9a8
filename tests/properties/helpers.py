"""Strategies and checks shared by the bad-input suite.

Every property runs 1,000 examples, derandomized (the same examples on every run: CI is
deterministic) with no example database (nothing written next to the tests)."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cruxcelery.errors import CruxError
from cruxcelery.flows.store.keys import ID_PATTERN, NAME_PATTERN

T = TypeVar("T")

PROPERTY = settings(max_examples=1000, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                           HealthCheck.large_base_example])

FORBIDDEN = (ValueError, TypeError, RecursionError, UnicodeError, KeyError, AttributeError, AssertionError)
"""What must never escape the public API raw (pydantic's ``ValidationError`` is a ``ValueError``).
A typed ``CruxError`` may also be one of these (``InvalidFlowId`` is a ``ValueError``): that is fine."""

SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff", "\udc80")


def only_crux_errors(call: Callable[[], T]) -> tuple[T | None, CruxError | None]:
    """``(result, None)`` or ``(None, the CruxError raised)``; anything else fails the property."""
    try:
        return call(), None
    except CruxError as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        return None, exc
    except BaseException as exc:
        raise AssertionError(f"a raw {type(exc).__module__}.{type(exc).__name__} escaped the public API: "
                             f"{str(exc)[:300]!r}") from exc


@contextmanager
def unchanged(db: Any, what: str) -> Iterator[None]:
    """The block must leave every key and value of the suite's Redis database as it found it."""
    before = db.digest()
    yield
    after = db.digest()
    assert after == before, f"{what}: Redis changed ({before[0]} -> {after[0]} keys)"


def wait_terminal(handle: Any, flow_id: str, timeout_s: float = 10.0) -> Any:
    """The flow's summary once it is finished; fails if it is not within ``timeout_s``. Waits on
    the flow's start task first (its result arrives by pub/sub: no polling while the worker runs)."""
    from celery.result import AsyncResult

    from cruxcelery.flows.manager import first_task_id

    deadline = time.monotonic() + timeout_s
    AsyncResult(first_task_id(flow_id), app=handle.task.app).get(timeout=timeout_s, propagate=False)
    while True:
        summary = handle.status(flow_id)
        if summary.status in ("completed", "failed", "cancelled", "expired"):
            return summary
        if time.monotonic() > deadline:
            raise AssertionError(f"flow {flow_id} is still {summary.status} after {timeout_s} s")
        time.sleep(0.0005)


# -- text and identifiers ------------------------------------------------------------------------

hostile_text = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(SURROGATES)), max_size=40)
"""Any text, lone surrogates included (often)."""

ID_RE = re.compile(ID_PATTERN)
NAME_RE = re.compile(NAME_PATTERN)
valid_ids = st.from_regex(ID_PATTERN, fullmatch=True)
valid_names = st.from_regex(NAME_PATTERN, fullmatch=True)


def near_misses(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Valid-looking strings broken in one place: a bad character, too long, empty, padded."""
    bad_char = st.one_of(st.sampled_from([" ", "\n", "\x00", "{", "}", "*", "/", "#", "é", "\u200b", ":"]),
                         st.sampled_from(SURROGATES))
    return st.one_of(
        st.tuples(valid, bad_char, st.integers(0, 200)).map(lambda t: t[0][: t[2]] + t[1] + t[0][t[2]:]),
        valid.map(lambda v: (v * 200)[:129]),
        st.just(""),
        valid.map(lambda v: f" {v}"),
        valid.map(lambda v: f"{v}\n"),
    )


non_strings = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.binary(max_size=20),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(object), st.just(uuid.UUID(int=7)), st.tuples(st.text(max_size=3)),
)


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], odds: int = 4) -> st.SearchStrategy[Any]:
    """``common`` ``odds - 1`` times in ``odds``, else ``rare`` (``one_of`` weighs its flattened
    branches equally, which drowns a single common branch)."""
    return st.integers(0, odds - 1).flatmap(lambda i: rare if i == 0 else common)


def identifiers(valid: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """Valid ids, near misses, any text and things that are not strings at all."""
    return st.one_of(valid, near_misses(valid), hostile_text, non_strings)


# -- values --------------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def nested(depth: int, leaf: Any = 0, kind: str = "list") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


@dataclass(frozen=True)
class Deep:
    """A nested value, built only when the test uses it (``realise``): examples print short, and
    Hypothesis' own pretty printer never walks thousands of levels."""

    depth: int
    leaf: Any = 0
    kind: str = "list"

    def build(self) -> Any:
        return nested(self.depth, self.leaf, self.kind)


def realise(value: Any) -> Any:
    return value.build() if isinstance(value, Deep) else value


deep_values = st.builds(Deep, st.one_of(st.integers(1, 60), st.integers(60, 300), st.integers(300, 5000)),
                        json_scalars, st.sampled_from(["list", "dict"]))
"""Nested lists and dicts, shallow to far deeper than any JSON parser's recursion limit (wrapped:
``realise`` them)."""

odd_scalars = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.binary(max_size=12), st.sets(st.integers(), max_size=3), st.builds(object),
    st.just(dt.datetime(2026, 5, 16, tzinfo=dt.UTC)), st.just(decimal.Decimal("1.5")), st.just(uuid.UUID(int=1)),
    st.text(alphabet=st.sampled_from((*SURROGATES, "a", "é")), min_size=1, max_size=6),
    st.complex_numbers(max_magnitude=10, allow_nan=False, allow_infinity=False),
)
"""Values JSON cannot carry as they are: NaN/Infinity, bytes, sets, objects, lone surrogates."""

hostile_values = st.one_of(
    json_values,
    deep_values,
    st.recursive(st.one_of(json_scalars, odd_scalars), lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.sampled_from(SURROGATES)), inner,
                        max_size=4),
        st.dictionaries(st.tuples(st.integers(), st.integers()), inner, min_size=1, max_size=2)),
        max_leaves=10),
    st.integers(1, 40_000).map(lambda n: "x" * n),
)
"""Anything a caller or a step might hand over: JSON, and everything JSON cannot carry (``realise``
them: deep values come wrapped)."""


def json_text(value: Any) -> str | None:
    """``value`` as the strict, UTF-8-encodable JSON the flow store keeps, or ``None``."""
    import json

    try:
        out = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        out.encode("utf-8")
        return out
    except (TypeError, ValueError, RecursionError):
        return None


def depth(value: Any) -> int:
    """How many containers deep a JSON value nests (a scalar: 0, ``[]``: 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list | tuple):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest
