"""Suspended flows at scale, on a ``redis-server`` the bench starts on a spare port (never the
shared 6379): 100,000 then 1,000,000 small suspended flows held at once.

The first flow is a real one: ``bench-signal`` run until it suspends (``run_inline``). Every key
it left (its hash, the index entries naming it) is then replicated for the other flows with fresh
ids (flow, run, trace, span and segment ids) and times, written with ``redis-cli --pipe``: the
store's own layout, byte for byte, without a million round trips. So each flow is a real
suspended flow: ``status()`` reads it, ``list_flows`` pages it, ``signal()`` completes it
through a worker.

At each size: whether every flow is held (each one's stored status read back, in pipelines),
``INFO memory`` ``used_memory`` added per flow (goal <= 1 KB) and where it goes (``MEMORY
USAGE`` of the flow's own keys, the rest being its index entries),
``list_flows(status="suspended", limit=100)`` and ``status()`` latency (goals <= 5 ms and
<= 1 ms p50), and signal -> completed of a sample of flows through a worker.

Run by ``python -m bench`` (which starts the server), or on its own:
``python -m bench.scale --sizes 100000,1000000``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Formatter
from typing import Any

import redis

FILL_BATCH = 2_000


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class Template:
    """The keys one real suspended flow left, as format strings over its ids and times."""

    flow_id: str
    per_flow: list[tuple[str, str, Any]] = field(default_factory=list)  # (key, type, content) with {placeholders}
    indexes: list[tuple[str, int]] = field(default_factory=list)  # (zset key, score - updated_at)
    names: dict[str, str] = field(default_factory=dict)  # placeholder -> the template's value
    updated_at: int = 0
    created_at: int = 0

    def commands(self) -> str:
        """Every per-flow write of one flow in RESP, as one format string over the placeholders
        (every generated value has the template value's length, so the lengths are fixed)."""
        sample = dict(self.names)
        parts: list[str] = []
        for key, kind, content in self.per_flow:
            args = [("HSET", key, *(a for pair in content for a in pair)) if kind == "hash" else ("SET", key, content)]
            for command in args:
                parts.append(f"*{len(command)}\r\n")
                for arg in command:
                    size = len(arg.format(**sample).encode()) if "{" in arg else len(arg.encode())
                    parts.append(f"${size}\r\n{arg}\r\n")
        return "".join(parts)

    def placeholders(self, value: str) -> str:
        value = value.replace("{", "{{").replace("}", "}}")
        for name, original in self.names.items():
            value = value.replace(original, "{" + name + "}")
        return value


def capture(client: redis.Redis, flow_id: str) -> Template:
    """SCAN is fine here: the server is the bench's own and holds this one flow."""
    tc_raw = client.hget(f"crux-bench:{{{flow_id}}}:flow", "data")
    assert tc_raw is not None, "the template flow has no snapshot"
    snapshot = json.loads(tc_raw)
    tc = snapshot["trace_context"]
    template = Template(flow_id=flow_id, updated_at=int(snapshot["updated_at"]),
                        created_at=int(snapshot["created_at"]))
    names = {"flow": flow_id, "run": tc["run_id"], "trace": tc["trace_id"], "span": tc["root_span_id"],
             "segment": tc["last_segment_id"], "updated": str(template.updated_at)}
    if template.created_at != template.updated_at:
        names["created"] = str(template.created_at)
    assert tc["operation_id"] == tc["run_id"]
    template.names = names
    for raw_key in client.scan_iter(count=1000):
        key = _text(raw_key)
        kind = _text(client.type(raw_key))
        if flow_id in key:
            if client.pttl(raw_key) > 0:
                raise RuntimeError(f"{key} expires: a suspended flow's keys should not")
            content: Any
            if kind == "hash":
                content = [(template.placeholders(_text(f)), template.placeholders(_text(v)))
                           for f, v in client.hgetall(raw_key).items()]
            elif kind == "string":
                content = template.placeholders(_text(client.get(raw_key) or b""))
            else:
                raise RuntimeError(f"{key}: a {kind} key of a suspended flow; the bench knows hashes and strings")
            template.per_flow.append((template.placeholders(key), kind, content))
        elif kind == "zset":
            score = client.zscore(raw_key, flow_id)
            if score is not None:
                template.indexes.append((key, int(score) - template.updated_at))
    return template


def _resp(*args: str) -> str:
    out = [f"*{len(args)}\r\n"]
    for arg in args:
        out.append(f"${len(arg.encode())}\r\n{arg}\r\n")
    return "".join(out)


def _ids(index: int, base_ms: int) -> dict[str, str]:
    """Fresh ids of the template's shapes (and lengths) and the flow's times."""
    raw = os.urandom(54).hex()
    updated = base_ms + index // 8
    return {"flow": "flow_" + raw[:24], "run": "run_" + raw[24:48], "trace": raw[48:80], "span": raw[80:96],
            "segment": "seg_" + raw[96:108] + raw[:12], "updated": str(updated), "created": str(updated - 11)}


def fill(port: int, template: Template, start: int, stop: int, base_ms: int) -> list[str]:
    """Flows ``start``..``stop`` through ``redis-cli --pipe``; returns their ids."""
    pieces = [(literal, name) for literal, name, _, _ in Formatter().parse(template.commands())]
    sample = _ids(start, base_ms)
    assert all(len(sample[name]) == len(value) for name, value in template.names.items()), (sample, template.names)
    pipe = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert pipe.stdin is not None
    flow_ids: list[str] = []
    for batch in range(start, stop, FILL_BATCH):
        chunk: list[str] = []
        members: list[str] = []
        for index in range(batch, min(stop, batch + FILL_BATCH)):
            values = _ids(index, base_ms)
            chunk.extend([literal + values[name] if name else literal for literal, name in pieces])
            flow_ids.append(values["flow"])
            members.append(values["updated"])
            members.append(values["flow"])
        for key, offset in template.indexes:
            if offset:
                chunk.append(_resp("ZADD", key, *(str(int(m) + offset) if i % 2 == 0 else m
                                                  for i, m in enumerate(members))))
            else:
                chunk.append(_resp("ZADD", key, *members))
        pipe.stdin.write("".join(chunk).encode())
    out, _ = pipe.communicate(timeout=600)
    report = out.decode(errors="replace")
    if pipe.returncode != 0 or "errors: 0" not in report:
        raise RuntimeError(f"redis-cli --pipe failed: {report[-2000:]}")
    return flow_ids


def held(port: int, keys: Any, flow_ids: list[str]) -> int:
    """How many of ``flow_ids`` read back as ``suspended``: every one of them, ``HGET`` of its
    status in pipelines over a plain socket (a million through redis-py would take a minute)."""
    suspended = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for start in range(0, len(flow_ids), 20_000):
            batch = flow_ids[start:start + 20_000]
            sock.sendall(("".join(_resp("HGET", keys.flow(fid), "status") for fid in batch) + _resp("PING")).encode())
            received = bytearray()
            while not received.endswith(b"+PONG\r\n"):
                data = sock.recv(1 << 20)
                if not data:
                    raise RuntimeError("the scale Redis closed the connection")
                received += data
            suspended += received.count(b"$9\r\nsuspended\r\n")
    return suspended


def _timed(call: Any, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        out.append(time.perf_counter() - started)
    return out


def measure(sizes: list[int], port: int, rounds: int, signals: int) -> dict[str, Any]:
    """In the process whose ``bench.app`` points at the scale server (``CRUX_BENCH_REDIS``)."""
    from bench import app as bench_app
    from bench import workers
    from bench.stats import pct
    from cruxcelery import list_flows
    from cruxcelery.flows.store.keys import FlowKeys

    client = redis.Redis(port=port)
    keys = FlowKeys(bench_app.crux.settings.key_prefix)
    first = bench_app.waiting.run_inline({})
    assert first is not None and first.status == "suspended", first
    template = capture(client, first.flow_id)
    flow_ids = [first.flow_id]
    usage = {key.format(**template.names): client.memory_usage(key.format(**template.names), samples=0) or 0
             for key, _, _ in template.per_flow}
    fields = {_text(f): len(v) for f, v in client.hgetall(keys.flow(first.flow_id)).items()}
    encoding = _text(client.object("encoding", keys.flow(first.flow_id)) or b"")
    baseline = int(client.info("memory")["used_memory"])
    out: dict[str, Any] = {"template": {"keys": usage, "hash_fields": fields, "hash_encoding": encoding,
                                        "indexes": [k for k, _ in template.indexes]}, "sizes": {}}
    base_ms = int(time.time() * 1000) - max(sizes) // 8
    signalled: set[str] = set()
    worker = None
    handle = bench_app.waiting
    try:
        with tempfile.TemporaryDirectory(prefix="crux-scale-") as tmp:
            for size in sizes:
                started = time.perf_counter()
                flow_ids += fill(port, template, len(flow_ids), size, base_ms)
                fill_s = time.perf_counter() - started
                used = int(client.info("memory")["used_memory"])
                started = time.perf_counter()
                suspended = held(port, keys, flow_ids)
                check_s = time.perf_counter() - started
                in_index = int(client.zcard(keys.status_index("suspended")))
                expected = len(flow_ids) - len(signalled)
                sample = random.sample(flow_ids, min(rounds, len(flow_ids)))
                statuses = [handle.status(fid).status for fid in sample[:50]]
                page, cursor = list_flows(status="suspended", limit=100, crux=bench_app.crux)
                assert len(page) == 100 and cursor is not None and all(s.status == "suspended" for s in page)
                lists = _timed(lambda: list_flows(status="suspended", limit=100, crux=bench_app.crux), rounds)
                nexts = _timed(lambda c=cursor: list_flows(status="suspended", limit=100, cursor=c,
                                                           crux=bench_app.crux), rounds)
                probe = iter(sample * 2)
                reads = _timed(lambda p=probe: handle.status(next(p)), rounds)
                if worker is None:
                    worker = workers.start({"CRUX_BENCH_REDIS": bench_app.REDIS, "CRUX_BENCH_QUEUE": bench_app.QUEUE},
                                           Path(tmp) / "worker.log", name="scale")
                latencies = []
                for flow_id in random.sample([f for f in flow_ids if f not in signalled], signals):
                    begun = time.perf_counter()
                    handle.signal(flow_id, "go", {"ok": True})
                    deadline = time.monotonic() + 30
                    while handle.status(flow_id).status != "completed":
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"flow {flow_id} did not complete after its signal")
                        time.sleep(0.0005)
                    latencies.append(time.perf_counter() - begun)
                    signalled.add(flow_id)
                row = {
                    "flows": len(flow_ids), "fill_s": fill_s, "check_s": check_s,
                    "held": suspended == expected and in_index == expected
                    and all(s == "suspended" for s in statuses),
                    "suspended_read_back": suspended, "expected": expected, "in_index": in_index,
                    "used_memory": used, "bytes_per_flow": (used - baseline) / (len(flow_ids) - 1),
                    "list_p50_ms": pct(lists, 50) * 1000, "list_next_p50_ms": pct(nexts, 50) * 1000,
                    "status_p50_ms": pct(reads, 50) * 1000, "signal_p50_ms": pct(latencies, 50) * 1000,
                    "signalled": len(latencies),
                }
                out["sizes"][str(size)] = row
                print(json.dumps({"size": size, **row}), file=sys.stderr, flush=True)
        out["breakdown"] = breakdown(client, out, len(template.indexes))
    finally:
        if worker is not None:
            worker.stop()
    return out


def breakdown(client: redis.Redis, out: dict[str, Any], indexes: int) -> dict[str, float]:
    """Where a flow's bytes go: its own keys (``MEMORY USAGE``), one sorted-set index entry
    (20,000 flow-id members added to a scratch sorted set, ``used_memory`` before and after) times
    the number of indexes, and the rest (the keyspace's own entry for each key)."""
    scratch = "crux-bench-scratch:zset"
    before = int(client.info("memory")["used_memory"])
    base = int(time.time() * 1000)
    for start in range(0, 20_000, 2_000):
        client.zadd(scratch, {f"flow_{os.urandom(12).hex()}": base + start + i for i in range(2_000)})
    entry = (int(client.info("memory")["used_memory"]) - before) / 20_000
    client.delete(scratch)
    per_flow = list(out["sizes"].values())[-1]["bytes_per_flow"]
    own = float(sum(out["template"]["keys"].values()))
    return {"per_flow": per_flow, "own_keys": own, "index_entry": entry, "indexes": indexes,
            "rest": per_flow - own - indexes * entry}


def run(sizes: list[int], rounds: int = 300, signals: int = 20) -> dict[str, Any]:
    """From ``python -m bench``: a redis-server of our own, the measurement in a subprocess (so
    that its ``bench.app`` binds to that server), the server stopped afterwards."""
    from tests.redis_server import RedisServer

    with tempfile.TemporaryDirectory(prefix="crux-scale-redis-") as tmp:
        server = RedisServer(Path(tmp), aof=False)
        server.start()
        try:
            env = {**os.environ, "CRUX_BENCH_REDIS": server.url, "CRUX_BENCH_QUEUE": f"crux-scale-{os.getpid()}"}
            done = subprocess.run([sys.executable, "-m", "bench.scale", "--port", str(server.port), "--sizes",
                                   ",".join(map(str, sizes)), "--rounds", str(rounds), "--signals", str(signals)],
                                  env=env, stdout=subprocess.PIPE, text=True, timeout=1800, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"bench.scale failed ({done.returncode})")
            result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            result["redis_version"] = redis.Redis(port=server.port).info("server")["redis_version"]
        finally:
            server.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--port", type=int, default=0, help="a Redis of the bench's own (else one is started)")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--signals", type=int, default=20)
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    if options.port:
        print(json.dumps(measure(sizes, options.port, options.rounds, options.signals)), flush=True)
    else:
        print(json.dumps(run(sizes, options.rounds, options.signals), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
