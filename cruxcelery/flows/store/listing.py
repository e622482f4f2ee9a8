"""``Listing.page``: pages of ``FlowSummary`` read from the sorted-set indexes only (never SCAN).

Order is newest status change first: score descending, then member (flow id) descending, which
is Redis' own order for ``ZREVRANGEBYSCORE``. The score is the ``updated_at`` of the save that last
changed the flow's status (or created it); a save that keeps the status (a step's output) does not
touch the indexes. The cursor is the position of the last returned entry, ``(score, flow_id)``;
the next page starts strictly after it. Every index holds a flow under the same score (one call
writes them), so a cursor means the same thing in all of them. A flow whose status does not change
while paging is seen exactly once; one whose status changes meanwhile moves to the front (it may
be missed by, or reappear in, the pages still to come).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import redis
from pydantic import ValidationError

from cruxcelery.errors import InvalidArgs
from cruxcelery.flows.codec import as_int, opt_text, reply_list, scored
from cruxcelery.flows.errors import FlowError, InvalidCursor
from cruxcelery.flows.snapshot import FlowSummary
from cruxcelery.flows.status import FLOW_STATUSES, FlowStatus
from cruxcelery.flows.store.keys import FlowKeys, validate_flow_id, validate_flow_name
from cruxcelery.flows.store.snapshots import Snapshots

MAX_LIMIT = 1000
_MAX_SCORE = 2**53  # scores are epoch ms, exact in Redis' doubles

Position = tuple[int, str]


def encode_cursor(position: Position) -> str:
    raw = json.dumps([position[0], position[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    if not isinstance(cursor, str):
        raise InvalidCursor(f"a list_flows cursor is a string, not {type(cursor).__name__}")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        score, member = json.loads(raw)
        if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score < _MAX_SCORE:
            raise ValueError("bad cursor score")
        return score, validate_flow_id(member)
    except (ValueError, TypeError, binascii.Error, RecursionError) as exc:
        raise InvalidCursor(f"invalid list_flows cursor {cursor[:64]!r}") from exc


@dataclass(frozen=True, slots=True)
class _Index:
    key: str
    status: FlowStatus | None  # set when the index is a status index (used to prune)


class Listing:
    """Reads the indexes the snapshots write; prunes their stale entries through ``snapshots``."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys, snapshots: Snapshots) -> None:
        self._redis = redis_client
        self._keys = keys
        self._snapshots = snapshots

    def page(
        self,
        status: FlowStatus | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[FlowSummary], str | None]:
        """A page of flows, newest status change first, and the cursor of the next page (``None`` at the
        end). Filters: ``status``, ``name``, or both (iterating the smaller index, filtering the
        other field). Index members whose snapshot is gone are skipped and removed."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidArgs(f"limit must be an integer between 1 and {MAX_LIMIT}, got {limit!r}")
        if status is not None and (not isinstance(status, str) or status not in FLOW_STATUSES):
            raise InvalidArgs(f"unknown flow status {status!r}: expected one of {FLOW_STATUSES}")
        if name is not None:
            validate_flow_name(name)
        index = self._pick_index(status, name)
        position = decode_cursor(cursor) if cursor is not None else None
        page: list[FlowSummary] = []
        batch = min(limit + 1, MAX_LIMIT)
        while True:
            entries = self._after(index.key, position, batch)
            rows = self._rows([member for member, _ in entries])
            for i, ((member, score), row) in enumerate(zip(entries, rows, strict=True)):
                position = (score, member)
                summary = self._candidate(index, member, row, status, name)
                if summary is None:
                    continue
                page.append(summary)
                if len(page) == limit:
                    more = i + 1 < len(entries) or bool(self._after(index.key, position, 1))
                    return page, encode_cursor(position) if more else None
            if len(entries) < batch:
                return page, None

    def _rows(self, flow_ids: list[str]) -> list[tuple[str | None, str | None, str | None]]:
        """``(status, name, summary JSON)`` of each flow, in one round trip."""
        if not flow_ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for flow_id in flow_ids:
            pipe.hmget(self._keys.flow(flow_id), ["status", "name", "summary"])
        rows: list[tuple[str | None, str | None, str | None]] = []
        for reply in reply_list(pipe.execute()):
            status, name, summary = (opt_text(v) for v in reply_list(reply))
            rows.append((status, name, summary))
        return rows

    def _pick_index(self, status: FlowStatus | None, name: str | None) -> _Index:
        if status is None:
            return _Index(self._keys.all_index() if name is None else self._keys.name_index(name), None)
        status_index = _Index(self._keys.status_index(status), status)
        if name is None:
            return status_index
        name_key = self._keys.name_index(name)
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(status_index.key)
        pipe.zcard(name_key)
        by_status, by_name = (as_int(n) for n in reply_list(pipe.execute()))
        return status_index if by_status <= by_name else _Index(name_key, None)

    def _after(self, key: str, position: Position | None, count: int) -> list[tuple[str, int]]:
        """Up to ``count`` index entries strictly after ``position``, in listing order."""
        if position is None:
            first = self._redis.zrevrangebyscore(key, "+inf", "-inf", start=0, num=count, withscores=True)
            return [(m, int(s)) for m, s in scored(first)]
        score, last = position
        out: list[tuple[str, int]] = []
        offset = 0
        while len(out) < count:  # the rest of the entries sharing the cursor's score
            tied = scored(
                self._redis.zrevrangebyscore(key, score, score, start=offset, num=count, withscores=True)
            )
            out.extend((m, score) for m, _ in tied if m.encode() < last.encode())
            offset += len(tied)
            if len(tied) < count:
                break
        if len(out) >= count:
            return out[:count]
        lower = self._redis.zrevrangebyscore(
            key, f"({score}", "-inf", start=0, num=count - len(out), withscores=True
        )
        return out + [(m, int(s)) for m, s in scored(lower)]

    def _candidate(
        self,
        index: _Index,
        flow_id: str,
        row: tuple[str | None, str | None, str | None],
        status: FlowStatus | None,
        name: str | None,
    ) -> FlowSummary | None:
        stored_status, stored_name, raw = row
        if (
            stored_status is None
            or raw is None
            or (index.status is not None and stored_status != index.status)
        ):
            self._snapshots.drop_stale_entry(index.key, index.status, flow_id)
            return None
        if (status is not None and stored_status != status) or (name is not None and stored_name != name):
            return None
        try:
            return FlowSummary.model_validate_json(raw)
        except ValidationError as exc:
            raise FlowError(f"flow {flow_id!r}: stored summary is invalid: {exc}") from exc
