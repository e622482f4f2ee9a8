"""``list_flows`` and ``purge_flows`` arguments: limit, status, name, cursor (real ones, corrupted
ones, forged ones), age. Only typed ``CruxError``s escape (issue 11: plain ``ValueError`` /
``TypeError``, and a float limit reached Redis and came back as ``StoreUnavailable``); listing
never writes; a page holds what its filters ask for and its cursor leads on."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from cruxcelery import cancel_flow, list_flows, purge_flows
from cruxcelery.errors import InvalidArgs
from cruxcelery.flows.errors import InvalidCursor, InvalidFlowId
from cruxcelery.flows.status import FLOW_STATUSES, TERMINAL_STATUSES
from cruxcelery.flows.store.listing import MAX_LIMIT
from tests.properties import app as props
from tests.properties.helpers import (
    NAME_RE,
    PROPERTY,
    hostile_text,
    identifiers,
    json_values,
    mostly,
    non_strings,
    only_crux_errors,
    unchanged,
    valid_ids,
    valid_names,
)

CURSORS: list[str] = []
NAMES = ["p-free", "p-declared", "p-values"]


@pytest.fixture(scope="module", autouse=True)
def _flows(db: Any) -> Iterator[None]:
    db.client.flushdb()
    for i in range(24):
        handle = props.free if i % 2 else props.declared
        flow_id = handle.start({"token": f"list-{i}"})
        if i % 3 == 0:
            cancel_flow(flow_id, "listed cancelled", crux=props.crux)
    db.client.delete(props.QUEUE)  # no worker here
    for status in (None, "pending", "cancelled"):
        for name in (None, "p-free"):
            for limit in (1, 2, 5):
                cursor = None
                while True:
                    _, cursor = list_flows(status, name, limit, cursor, crux=props.crux)
                    if cursor is None:
                        break
                    CURSORS.append(cursor)
    yield
    db.client.flushdb()


def _forged(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


DEEP_CURSOR = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()


def _corrupt(args: tuple[int, int, str]) -> str:
    index, at, char = args
    cursor = CURSORS[index % len(CURSORS)]
    at %= len(cursor)
    return cursor[:at] + char + cursor[at + 1:]


real_cursors = st.integers(0, 10_000).map(lambda i: CURSORS[i % len(CURSORS)])
cursors = mostly(st.one_of(st.none(), real_cursors), st.one_of(
    st.tuples(st.integers(0, 10_000), st.integers(0, 200), st.sampled_from([*"A_-=+/. ", "\ud800", "é"]))
    .map(_corrupt),
    st.tuples(st.integers(-(2**80), 2**80), st.one_of(valid_ids, hostile_text)).map(lambda t: _forged(list(t))),
    json_values.map(_forged),
    hostile_text, non_strings,
))
limits = mostly(st.integers(1, 60), st.one_of(
    st.integers(-5, 0), st.integers(MAX_LIMIT - 2, MAX_LIMIT + 3), st.integers(), st.floats(), st.booleans(),
    st.sampled_from(["5", b"5", None, 5.0, [5]])))
statuses = mostly(st.one_of(st.none(), st.sampled_from(FLOW_STATUSES)),
                  st.one_of(hostile_text, non_strings, st.sampled_from(["PENDING", "done", "pending "])))
names = mostly(st.one_of(st.none(), st.sampled_from(NAMES)), identifiers(valid_names))


def _problem(status: Any, name: Any, limit: Any, cursor: Any) -> type[Exception] | None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        return InvalidArgs
    if status is not None and status not in FLOW_STATUSES:
        return InvalidArgs
    if name is not None and not (isinstance(name, str) and NAME_RE.fullmatch(name)):
        return InvalidFlowId
    if cursor is not None and cursor not in CURSORS:
        return InvalidCursor  # or, for a well-formed forged one, a page: checked below
    return None


@given(status=statuses, name=names, limit=limits, cursor=cursors)
@example(status=None, name=None, limit=0, cursor=None)  # issue 11: ValueError
@example(status=None, name=None, limit="5", cursor=None)  # issue 11: TypeError
@example(status=None, name=None, limit=2.5, cursor=None)  # reached Redis: StoreUnavailable
@example(status=None, name=None, limit=True, cursor=None)
@example(status="done", name=None, limit=5, cursor=None)  # issue 11: ValueError
@example(status=["pending"], name=None, limit=5, cursor=None)
@example(status=None, name=None, limit=5, cursor=12)  # a TypeError while describing the bad cursor
@example(status=None, name=None, limit=5, cursor=_forged([10**30, "flow_x"]))  # a score Redis cannot parse
@example(status=None, name=None, limit=5, cursor=DEEP_CURSOR)  # a RecursionError while decoding
@PROPERTY
def test_list_flows_returns_a_filtered_page_or_a_typed_error_and_never_writes(
        db: Any, status: Any, name: Any, limit: Any, cursor: Any) -> None:
    with unchanged(db, "list_flows"):
        page, error = only_crux_errors(lambda: list_flows(status, name, limit, cursor, crux=props.crux))
    problem = _problem(status, name, limit, cursor)
    event("page" if error is None else type(error).__name__)
    if error is not None:
        assert problem is not None, f"refused valid arguments: {error!r}"
        assert isinstance(error, problem), f"expected {problem.__name__}, got {error!r}"
        return
    assert problem in (None, InvalidCursor), f"accepted bad arguments: expected {problem}"
    assert page is not None
    summaries, next_cursor = page
    assert len(summaries) <= limit
    assert all(s.status == status for s in summaries) if status else True
    assert all(s.name == name for s in summaries) if name else True
    assert len({s.flow_id for s in summaries}) == len(summaries)
    if next_cursor is not None:
        assert len(summaries) == limit
        more, _ = list_flows(status, name, limit, next_cursor, crux=props.crux)
        assert not {s.flow_id for s in more} & {s.flow_id for s in summaries}


ages = mostly(st.one_of(st.floats(1e7, 1e11), st.integers(10**7, 10**11)), st.one_of(  # valid, or out of range
    st.floats(max_value=-1e-300), st.floats(min_value=1e12), st.integers(max_value=-1), st.integers(min_value=10**12),
    st.sampled_from([float("nan"), float("inf"), "60", b"60", None, True, False, [60], 60j])))


@given(status=statuses, older_than_s=ages, limit=limits)
@example(status="pending", older_than_s=1e9, limit=5)  # only finished flows are purged
@example(status=["cancelled"], older_than_s=1e9, limit=5)  # a TypeError from a set lookup
@example(status="cancelled", older_than_s=float("nan"), limit=5)
@example(status="cancelled", older_than_s=1e300, limit=5)  # an OverflowError
@example(status="cancelled", older_than_s="60", limit=5)
@example(status="cancelled", older_than_s=1e9, limit=2.5)
@PROPERTY
def test_purge_flows_arguments_are_checked_before_anything_is_deleted(
        db: Any, status: Any, older_than_s: Any, limit: Any) -> None:
    """Ages here are all long past the fixture's flows: a purge that runs deletes nothing."""
    with unchanged(db, "purge_flows"):
        deleted, error = only_crux_errors(
            lambda: purge_flows(status, older_than_s, limit=limit, crux=props.crux))
    valid = ((status is None or (isinstance(status, str) and status in TERMINAL_STATUSES))
             and not isinstance(older_than_s, bool) and isinstance(older_than_s, int | float)
             and 0 <= older_than_s < 1e12
             and not isinstance(limit, bool) and isinstance(limit, int) and limit >= 1)
    event("purged nothing" if error is None else type(error).__name__)
    if valid:
        assert error is None and deleted == 0, repr(error)
    else:
        assert isinstance(error, InvalidArgs), repr(error)


def test_the_fixture_collected_real_cursors() -> None:
    assert len(CURSORS) > 20
