"""Fixtures of the bad-input suite: Redis database 14 (flushed once when the suite starts), a
digest of everything in it, and one in-thread worker per module that needs one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.properties import app as props

# Every key, its type, its content in a canonical order (DUMP is not canonical: a hashtable-encoded
# hash or set dumps in its iteration order, which rehashing changes on reads) and whether it has a
# TTL, hashed in Redis itself: one round trip whatever the size of the database. PTTL values are
# left out (they tick down).
_DIGEST = r"""
local keys = redis.call('KEYS', '*')
table.sort(keys)
local parts = {}
local function add(items) for _, item in ipairs(items) do parts[#parts + 1] = item end end
for _, key in ipairs(keys) do
  local kind = redis.call('TYPE', key)['ok']
  parts[#parts + 1] = key
  parts[#parts + 1] = kind
  parts[#parts + 1] = tostring(redis.call('PTTL', key) >= 0)
  if kind == 'string' then
    parts[#parts + 1] = redis.call('GET', key)
  elseif kind == 'list' then
    add(redis.call('LRANGE', key, 0, -1))
  elseif kind == 'set' then
    local members = redis.call('SMEMBERS', key)
    table.sort(members)
    add(members)
  elseif kind == 'zset' then
    add(redis.call('ZRANGE', key, 0, -1, 'WITHSCORES'))
  elseif kind == 'hash' then
    local flat = redis.call('HGETALL', key)
    local pairs_ = {}
    for i = 1, #flat, 2 do pairs_[#pairs_ + 1] = flat[i] .. '\1' .. flat[i + 1] end
    table.sort(pairs_)
    add(pairs_)
  else
    parts[#parts + 1] = redis.call('DUMP', key)
  end
end
return {#keys, redis.sha1hex(table.concat(parts, '\0'))}
"""


class Db:
    """The suite's Redis database and a cheap way to tell whether anything in it changed."""

    def __init__(self) -> None:
        self.client = redis.Redis(host="127.0.0.1", port=6379, db=props.DB)
        self._digest = self.client.register_script(_DIGEST)

    def digest(self) -> tuple[int, str]:
        count, sha = self._digest()
        return int(count), sha.decode() if isinstance(sha, bytes) else str(sha)


@pytest.fixture(scope="session")
def db() -> Iterator[Db]:
    handle = Db()
    handle.client.flushdb()
    yield handle
    handle.client.close()


@pytest.fixture(autouse=True)
def _props_crux_is_current(db: Db) -> Iterator[None]:
    """Module-level API calls (``list_flows``, ``cancel_flow``...) mean this suite's ``Crux``; the
    runtime that was current before is current again after the test."""
    from cruxcelery import Crux

    before = Crux.current()
    props.crux.make_current()
    yield
    if before is not None:
        before.make_current()


@pytest.fixture(scope="module")
def props_worker(db: Db) -> Iterator[Any]:
    """A real Celery worker in a thread (solo pool) on the suite's queue; its sweeper runs too. Like
    the other suites' module workers (``tests/cli``, ``tests/agents``...), it must not overlap
    another in-thread worker: ``start_worker`` stops workers through Celery's process-wide state."""
    from celery import _state
    from celery.contrib.testing.worker import start_worker

    db.client.flushdb()  # the module starts from an empty database (its worker's sweeper finds nothing old)
    # flows fail here by the thousand, on purpose: their tracebacks are not worth printing
    quiet = {name: logging.getLogger(name) for name in ("cruxcelery.flows", "celery.app.trace")}
    levels = {name: logger.level for name, logger in quiet.items()}
    for logger in quiet.values():
        logger.setLevel(logging.CRITICAL)
    current, default = _state.get_current_app(), _state.default_app
    try:
        with start_worker(props.app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                          shutdown_timeout=10.0) as running:
            yield running
    finally:
        for name, logger in quiet.items():
            logger.setLevel(levels[name])
        _state.set_default_app(default)  # start_worker made the suite's app the process's current one
        _state._set_current_app(current)
    db.client.flushdb()
    assert not props.SINK.invalid, f"records failed the v5 models: {props.SINK.invalid[:3]}"
    props.SINK.clear()
