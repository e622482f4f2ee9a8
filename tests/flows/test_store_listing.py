from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cruxcelery.flows.errors import InvalidCursor
from cruxcelery.flows.snapshot import FlowSnapshot, FlowSummary
from cruxcelery.flows.status import FlowStatus
from cruxcelery.flows.store.flow_store import RedisFlowStore

Snap = Callable[..., FlowSnapshot]

BASE = 1_700_000_000_000


def _seed(store: RedisFlowStore, snap: Snap, count: int, **fields: object) -> list[str]:
    """``count`` flows; every 7 share an ``updated_at`` so ties are exercised. Returns their ids."""
    ids = []
    for i in range(count):
        flow_id = f"{fields.get('name', 'writer')}-{fields.get('status', 'pending')}-{i:03d}"
        store.snapshots.create(snap(flow_id, updated_at=BASE + (i // 7) * 1_000, **fields))
        ids.append(flow_id)
    return ids


def _page_all(
    store: RedisFlowStore, status: FlowStatus | None = None, name: str | None = None, limit: int = 50
) -> list[list[FlowSummary]]:
    pages: list[list[FlowSummary]] = []
    cursor: str | None = None
    while True:
        page, cursor = store.listing.page(status=status, name=name, limit=limit, cursor=cursor)
        pages.append(page)
        if cursor is None:
            return pages
        assert len(pages) < 100, "paging does not terminate"


def _assert_newest_first(items: list[FlowSummary]) -> None:
    order = [(s.updated_at, s.flow_id) for s in items]
    assert order == sorted(order, reverse=True)


@pytest.mark.parametrize(("wanted_filter", "other_filter"), [
    ({"status": "suspended"}, {"status": "running"}),
    ({"name": "reader"}, {"name": "writer"}),
], ids=["by-status", "by-name"])
def test_listing_pages_through_120_flows_once_each_newest_first(
    store: RedisFlowStore, snap: Snap, wanted_filter: dict[str, Any], other_filter: dict[str, Any]
) -> None:
    wanted = _seed(store, snap, 120, **wanted_filter)
    _seed(store, snap, 30, **other_filter)

    pages = _page_all(store, limit=50, **wanted_filter)

    listed = [s for page in pages for s in page]
    assert [len(p) for p in pages] == [50, 50, 20]
    assert sorted(s.flow_id for s in listed) == sorted(wanted) and len({s.flow_id for s in listed}) == 120
    for field, value in wanted_filter.items():
        assert {getattr(s, field) for s in listed} == {value}
    _assert_newest_first(listed)


def test_list_by_status_and_name_returns_the_intersection(store: RedisFlowStore, snap: Snap) -> None:
    wanted = _seed(store, snap, 60, name="reader", status="suspended")
    _seed(store, snap, 40, name="reader", status="running")
    _seed(store, snap, 70, name="writer", status="suspended")

    pages = _page_all(store, status="suspended", name="reader", limit=25)

    seen = [s.flow_id for page in pages for s in page]
    assert sorted(seen) == sorted(wanted) and len(seen) == 60
    _assert_newest_first([s for page in pages for s in page])


def test_list_without_filters_uses_the_all_index(store: RedisFlowStore, snap: Snap) -> None:
    ids = _seed(store, snap, 12, status="completed") + _seed(store, snap, 5, status="failed")

    pages = _page_all(store, limit=5)

    assert sorted(s.flow_id for page in pages for s in page) == sorted(ids)


def test_list_follows_status_changes(store: RedisFlowStore, snap: Snap) -> None:
    store.snapshots.create(snap("f1", status="pending"))
    current = store.snapshots.require("f1")
    store.snapshots.save(current.model_copy(update={"status": "suspended", "suspended_at": "approval"}), 0)

    assert store.listing.page(status="pending") == ([], None)
    page, _ = store.listing.page(status="suspended")
    assert [(s.flow_id, s.status, s.suspended_at) for s in page] == [("f1", "suspended", "approval")]


def test_list_orders_by_the_last_status_change_not_by_saves_that_keep_the_status(
    store: RedisFlowStore, snap: Snap
) -> None:
    store.snapshots.create(snap("older", status="running", updated_at=BASE))
    store.snapshots.create(snap("newer", status="running", updated_at=BASE + 1_000))
    older = store.snapshots.require("older")

    saved = store.snapshots.save(older.model_copy(update={"step_order": ["s1"]}), older.version)  # a step's output

    assert saved.updated_at > BASE + 1_000
    page, _ = store.listing.page(status="running")
    assert [s.flow_id for s in page] == ["newer", "older"]
    for key in (store.keys.status_index("running"), store.keys.name_index("writer"), store.keys.all_index()):
        assert store.redis.zscore(key, "older") == BASE
    suspended = store.snapshots.save(saved.model_copy(update={"status": "suspended"}), saved.version)
    page, _ = store.listing.page()
    assert [s.flow_id for s in page] == ["older", "newer"]
    assert store.redis.zscore(store.keys.all_index(), "older") == suspended.updated_at


def test_a_stale_entry_put_back_keeps_the_score_of_the_other_indexes(store: RedisFlowStore, snap: Snap) -> None:
    store.snapshots.create(snap("f1", status="running", updated_at=BASE))
    current = store.snapshots.require("f1")
    store.snapshots.save(current.model_copy(update={"step_order": ["s1"]}), current.version)

    store.snapshots.drop_stale_entry(store.keys.status_index("running"), "running", "f1")

    assert store.redis.zscore(store.keys.status_index("running"), "f1") == BASE


def test_list_skips_and_removes_members_whose_snapshot_is_gone(store: RedisFlowStore, snap: Snap) -> None:
    ids = _seed(store, snap, 10, status="suspended")
    store.redis.delete(store.keys.flow(ids[3]), store.keys.flow(ids[7]))

    page, cursor = store.listing.page(status="suspended", limit=50)

    assert sorted(s.flow_id for s in page) == sorted(set(ids) - {ids[3], ids[7]})
    assert cursor is None
    assert store.redis.zscore(store.keys.status_index("suspended"), ids[3]) is None
    assert store.redis.zscore(store.keys.status_index("suspended"), ids[7]) is None


def test_list_removes_a_stale_status_index_member(store: RedisFlowStore, snap: Snap) -> None:
    store.snapshots.create(snap("f1", status="completed"))
    store.redis.zadd(store.keys.status_index("running"), {"f1": BASE})

    assert store.listing.page(status="running") == ([], None)
    assert store.redis.zscore(store.keys.status_index("running"), "f1") is None
    assert store.redis.zscore(store.keys.status_index("completed"), "f1") is not None


def test_last_full_page_has_no_cursor(store: RedisFlowStore, snap: Snap) -> None:
    _seed(store, snap, 10)

    page, cursor = store.listing.page(limit=10)

    assert len(page) == 10 and cursor is None


def test_invalid_cursor_is_rejected(store: RedisFlowStore) -> None:
    with pytest.raises(InvalidCursor):
        store.listing.page(cursor="not-a-cursor")
    with pytest.raises(ValueError):
        store.listing.page(limit=0)
