"""Forwarder: spool (real Redis) -> devtools (the real test receiver), in a consumer group."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from cruxcelery.telemetry.http.breaker import CircuitBreaker
from cruxcelery.telemetry.http.chunking import MAX_BODY_BYTES
from cruxcelery.telemetry.http.retry import RetryPolicy
from cruxcelery.telemetry.http.transport import INGEST_PATH, HttpTransport
from cruxcelery.telemetry.spool.forwarder import Forwarder
from cruxcelery.telemetry.spool.group import DEFAULT_GROUP, ensure_group, read_new, spool_stats
from cruxcelery.telemetry.spool.stream import SpoolExporter, build_entry, spool_client
from tests.receiver import Receiver, free_port, sample_record, sample_records
from tests.telemetry.spoolkit import REDIS_URL, RedisProxy, eventually, redis_or_skip, stream_key

MakeForwarder = Callable[..., Forwarder]


@pytest.fixture()
def client() -> redis.Redis:
    return redis_or_skip()


@pytest.fixture()
def key(client: redis.Redis) -> Iterator[str]:
    with stream_key(client) as name:
        yield name


@pytest.fixture()
def make_forwarder(client: redis.Redis, key: str) -> Iterator[MakeForwarder]:
    made: list[Forwarder] = []

    def make(url: str, **options: Any) -> Forwarder:
        forwarder = Forwarder(client, key, HttpTransport(url, policy=options.pop("policy", None)), **options)
        made.append(forwarder)
        return forwarder

    yield make
    for forwarder in made:
        forwarder.stop(2.0)


def spool(client: redis.Redis, key: str, records: list[dict[str, Any]], per_flush: int = 8) -> None:
    exporter = SpoolExporter(client, key)
    for start in range(0, len(records), per_flush):
        exporter.export(records[start : start + per_flush])
        assert exporter.flush(1.0).status == "drained"


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [str(record["recordId"]) for record in records]


def test_drain_delivers_every_spooled_record_exactly_once(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    records = sample_records(1000, size=300)
    spool(client, key, records)
    forwarder = make_forwarder(receiver.url)
    assert forwarder.drain(10.0)
    assert sorted(receiver.record_ids()) == sorted(ids(records))
    assert max(Counter(receiver.record_ids()).values()) == 1
    stats = spool_stats(client, key)
    assert (stats.unread, stats.pending) == (0, 0) and forwarder.stats.entries_acked == 125


def test_requests_carry_at_most_50_records_and_1_mib(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    records = sample_records(120, size=300) + sample_records(12, tag="fedcba9876543210", size=150_000)
    spool(client, key, records, per_flush=40)
    assert make_forwarder(receiver.url).drain(10.0)
    requests = receiver.requests()
    assert max(len(request.records) for request in requests) <= 50
    assert max(request.content_length for request in requests) <= MAX_BODY_BYTES
    assert sorted(receiver.record_ids()) == sorted(ids(records))


def test_a_permanently_rejected_record_is_acknowledged_and_counted(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    records = sample_records(8)
    receiver.reject(ids(records)[2])
    spool(client, key, records)
    forwarder = make_forwarder(receiver.url)
    assert forwarder.drain(5.0)
    assert receiver.record_ids() == ids(records[:2] + records[3:])
    assert forwarder.stats.rejected == 1 and spool_stats(client, key).pending == 0


def test_a_retryably_rejected_record_is_resent_alone(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    records = sample_records(8)
    receiver.reject(ids(records)[5], retryable=True, times=1)
    spool(client, key, records)
    assert make_forwarder(receiver.url).drain(5.0)
    assert Counter(receiver.record_ids()) == Counter(ids(records))
    assert [len(request.records) for request in receiver.requests()] == [8, 1]


def test_entries_stay_pending_while_devtools_is_down_and_arrive_once_when_it_is_back(
    client: redis.Redis, key: str, make_forwarder: MakeForwarder
) -> None:
    port = free_port()
    records = sample_records(40)
    spool(client, key, records)
    forwarder = make_forwarder(f"http://127.0.0.1:{port}", breaker=CircuitBreaker(probe_base_s=0.05, probe_cap_s=0.1))
    result = forwarder.run_once(1.0)
    assert result.pending_records == 40 and forwarder.breaker.is_open
    assert spool_stats(client, key).pending == 5
    with Receiver(port=port) as receiver:
        assert forwarder.drain(5.0)
        assert Counter(receiver.record_ids()) == Counter(ids(records))
    assert spool_stats(client, key).pending == 0


def test_while_the_breaker_is_open_a_pass_reads_nothing(
    client: redis.Redis, key: str, make_forwarder: MakeForwarder
) -> None:
    spool(client, key, sample_records(16))
    forwarder = make_forwarder(f"http://127.0.0.1:{free_port()}", breaker=CircuitBreaker(probe_base_s=60.0))
    assert forwarder.run_once(1.0).pending_records == 16  # the failed send opens the breaker
    spool(client, key, sample_records(8, tag="fedcba9876543210"))
    assert forwarder.run_once(1.0).skipped
    assert forwarder.stats.entries_read == 2
    stats = spool_stats(client, key)
    assert (stats.pending, stats.unread) == (2, 1)


def test_entries_of_a_dead_consumer_are_claimed_after_the_idle_time(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    records = sample_records(24)
    spool(client, key, records)
    ensure_group(client, key)
    taken = read_new(client, key, DEFAULT_GROUP, "dead-consumer", 2)  # read, never acknowledged
    assert len(taken.entries) == 2
    forwarder = make_forwarder(receiver.url, claim_idle_s=0.05, claim_interval_s=0.0)
    eventually(lambda: forwarder.drain(2.0) and spool_stats(client, key).pending == 0)
    assert Counter(receiver.record_ids()) == Counter(ids(records))
    assert forwarder.stats.entries_claimed == 2


def test_entries_trimmed_before_delivery_are_counted(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    forwarder = make_forwarder(receiver.url)
    forwarder.drain(1.0)  # creates the group
    exporter = SpoolExporter(client, key, max_entries=3, approximate=False)
    for n in range(10):
        exporter.export([sample_record(n)])
        exporter.flush(1.0)
    assert forwarder.drain(5.0)
    assert forwarder.stats.trimmed_unread == 7 and len(receiver.record_ids()) == 3
    assert spool_stats(client, key).trimmed_unread == 7


def test_an_entry_trimmed_while_pending_is_acknowledged_and_counted_lost(
    client: redis.Redis, key: str, make_forwarder: MakeForwarder
) -> None:
    port = free_port()
    spool(client, key, sample_records(8))
    forwarder = make_forwarder(f"http://127.0.0.1:{port}", breaker=CircuitBreaker(probe_base_s=0.01, probe_cap_s=0.02))
    forwarder.run_once(1.0)  # read, devtools down: pending
    client.xtrim(key, maxlen=0)
    with Receiver(port=port):
        assert forwarder.drain(5.0)
    assert forwarder.stats.lost_pending == 1
    stats = spool_stats(client, key)
    assert stats.lost_pending == 1 and stats.pending == 0


def test_the_group_and_stream_are_created_when_missing(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    assert make_forwarder(receiver.url).drain(2.0)
    assert client.xinfo_groups(key)[0]["name"] == DEFAULT_GROUP.encode()


def test_a_malformed_entry_is_acknowledged_and_skipped(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    client.xadd(key, {"d": "not json"})
    spool(client, key, sample_records(2))
    forwarder = make_forwarder(receiver.url)
    assert forwarder.drain(5.0)
    assert len(receiver.record_ids()) == 2 and forwarder.stats.malformed == 1
    assert spool_stats(client, key).pending == 0


def test_the_thread_delivers_what_is_spooled_while_it_runs(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    forwarder = make_forwarder(receiver.url, block_s=0.2)
    forwarder.start()
    eventually(lambda: forwarder.stats.passes > 0)
    records = sample_records(30)
    spool(client, key, records)
    assert receiver.wait_for(records=30, timeout=10.0)
    assert forwarder.stop(5.0) and not forwarder.running
    assert Counter(receiver.record_ids()) == Counter(ids(records))


def test_two_forwarders_in_one_group_deliver_each_record_once(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    first = make_forwarder(receiver.url, batch_entries=3, block_s=0.2)
    second = make_forwarder(receiver.url, batch_entries=3, block_s=0.2)
    first.start()
    second.start()
    records = sample_records(400, size=200)
    spool(client, key, records)
    assert receiver.wait_for(records=400, timeout=15.0)
    first.stop(5.0)
    second.stop(5.0)
    assert Counter(receiver.record_ids()) == Counter(ids(records))
    assert first.stats.delivered > 0 and second.stats.delivered > 0


def test_redis_down_a_pass_fails_quietly(receiver: Receiver) -> None:
    client = spool_client(f"redis://127.0.0.1:{free_port()}/9")
    forwarder = Forwarder(client, "test:down", HttpTransport(receiver.url, policy=RetryPolicy()))
    result = forwarder.run_once(1.0)
    assert result.entries == 0 and forwarder.stats.redis_errors == 1
    assert not forwarder.drain(0.2)


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_gets_its_own_consumer_and_is_stopped(
    receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    forwarder = make_forwarder(receiver.url, block_s=0.2)
    forwarder.start()
    parent_consumer = forwarder.consumer
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read)
            ok = not forwarder.running and forwarder.consumer != parent_consumer
            os.write(write, b"1" if ok else b"0")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"1" and forwarder.running


def _in_child_killed(work: Callable[[], None]) -> None:
    """Run ``work`` in a forked child that is then killed with SIGKILL (no cleanup of any kind)."""
    pid = os.fork()
    if pid == 0:
        try:
            work()
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_records_spooled_by_a_process_killed_right_after_its_flush_are_delivered(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    records = sample_records(24)

    def spool_then_die() -> None:
        exporter = SpoolExporter(spool_client(REDIS_URL), key)
        exporter.export(records)
        exporter.flush(1.0)

    _in_child_killed(spool_then_die)
    assert make_forwarder(receiver.url).drain(5.0)
    assert Counter(receiver.record_ids()) == Counter(ids(records))


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_entries_pending_at_a_killed_forwarder_are_claimed_and_delivered_once(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    records = sample_records(40)
    spool(client, key, records)
    down = f"http://127.0.0.1:{free_port()}"

    def read_then_die() -> None:  # devtools down: everything it read stays pending in its name
        Forwarder(spool_client(REDIS_URL), key, HttpTransport(down), consumer="doomed").run_once(1.0)

    _in_child_killed(read_then_die)
    assert spool_stats(client, key).pending == 5
    survivor = make_forwarder(receiver.url, claim_idle_s=0.05, claim_interval_s=0.0)
    eventually(lambda: survivor.drain(2.0) and spool_stats(client, key).pending == 0)
    assert Counter(receiver.record_ids()) == Counter(ids(records))


def test_a_running_forwarder_delivers_a_backlog_built_while_devtools_was_down_once_it_is_back(
    client: redis.Redis, key: str, make_forwarder: MakeForwarder
) -> None:
    port = free_port()
    forwarder = make_forwarder(
        f"http://127.0.0.1:{port}", block_s=0.2, breaker=CircuitBreaker(probe_base_s=0.05, probe_cap_s=0.2)
    )
    forwarder.start()
    records = sample_records(1000, size=200)
    spool(client, key, records)
    eventually(lambda: forwarder.breaker.is_open)
    with Receiver(port=port) as receiver:
        assert receiver.wait_for(records=1000, timeout=20.0)
        eventually(lambda: spool_stats(client, key).pending == 0)
        assert forwarder.stop(5.0)
        assert Counter(receiver.record_ids()) == Counter(ids(records))


def test_an_unreadable_record_in_the_spool_costs_only_itself(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder
) -> None:
    before, after = sample_records(6), sample_records(6, tag="fedcba9876543210")
    spool(client, key, before)
    neighbour = sample_record(50, tag="aaaaaaaaaaaaaaaa")
    data, lengths = build_entry([json.dumps(neighbour, separators=(",", ":")).encode(), b'{"recordId":"rec_bad"'])
    client.xadd(key, {b"d": data, b"l": lengths})  # the lengths are right: the second record is not JSON
    spool(client, key, after)
    forwarder = make_forwarder(receiver.url)
    assert forwarder.drain(5.0)
    assert sorted(receiver.record_ids()) == sorted(ids([*before, neighbour, *after]))
    assert forwarder.stats.rejected == 1 and spool_stats(client, key).pending == 0


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_configuration_error_keeps_the_entries_pending_until_devtools_answers(
    client: redis.Redis, key: str, receiver: Receiver, make_forwarder: MakeForwarder, status: int
) -> None:
    records = sample_records(16)
    spool(client, key, records)
    receiver.script(status)
    forwarder = make_forwarder(receiver.url, breaker=CircuitBreaker(probe_base_s=0.05, probe_cap_s=0.1))
    assert forwarder.run_once(1.0).pending_records == 16
    assert spool_stats(client, key).pending == 2 and forwarder.stats.rejected == 0
    assert forwarder.drain(5.0)
    assert Counter(receiver.record_ids()) == Counter(ids(records))
    assert spool_stats(client, key).pending == 0


def test_entries_refused_for_a_wrong_token_arrive_once_devtools_restarts_with_the_right_one(
    client: redis.Redis, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    records = sample_records(8)
    spool(client, key, records)
    with Receiver(token="another") as receiver:
        transport = HttpTransport(receiver.url, "the-workers-token")
        forwarder = Forwarder(client, key, transport, breaker=CircuitBreaker(probe_base_s=0.05, probe_cap_s=0.1))
        with caplog.at_level(logging.WARNING, logger="cruxcelery.telemetry"):
            assert not forwarder.drain(0.5)
        assert spool_stats(client, key).pending == 1 and receiver.record_ids() == []
        receiver.token = "the-workers-token"  # devtools restarted with the token the workers send
        assert forwarder.drain(5.0)
        assert Counter(receiver.record_ids()) == Counter(ids(records))
        transport.close()
        url = f"{receiver.url}{INGEST_PATH}"
    assert url in caplog.text and "the-workers-token" not in caplog.text


def test_a_probe_pass_failing_on_redis_does_not_stop_the_forwarder(key: str, receiver: Receiver) -> None:
    proxy = RedisProxy().up()
    breaker = CircuitBreaker(probe_base_s=0.05, probe_cap_s=0.05)
    forwarder = Forwarder(spool_client(proxy.url), key, HttpTransport(receiver.url), breaker=breaker)
    try:
        breaker.failure("devtools was down")
        proxy.down()
        eventually(lambda: time.monotonic() > breaker.probe_at())
        assert forwarder.run_once(1.0).entries == 0  # the probe pass fails on Redis
        proxy.up()
        records = sample_records(4)
        spool(redis_or_skip(), key, records)
        assert forwarder.drain(5.0)
        assert receiver.record_ids() == ids(records)
    finally:
        proxy.down()


def test_a_forwarder_whose_redis_is_down_does_not_spin(key: str, receiver: Receiver) -> None:
    proxy = RedisProxy().up()
    breaker = CircuitBreaker(probe_base_s=0.05, probe_cap_s=0.05)
    forwarder = Forwarder(spool_client(proxy.url), key, HttpTransport(receiver.url), breaker=breaker)
    breaker.failure("devtools was down")
    proxy.down()
    forwarder.start()
    try:
        time.sleep(1.5)
    finally:
        forwarder.stop(5.0)
    assert forwarder.stats.passes < 20
