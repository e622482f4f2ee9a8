"""``python -m bench`` (``make bench``): every benchmark in one run, one table, ``bench/RESULTS.md``.

Real parts only: Redis on 127.0.0.1:6379 database 9 (``CRUX_BENCH_REDIS``) for the broker, the
flow store and the spool; real prefork Celery workers in subprocesses; the test receiver in its own
process standing in for devtools; DBOS on PostgreSQL (127.0.0.1:5432, started if it does not
answer) measured in the same run; a ``redis-server`` of the bench's own on a spare port for the
million suspended flows.

``--quick`` runs every row at small sizes (a few minutes less; for checking the bench itself: it
does not write ``bench/RESULTS.md`` unless ``--output`` says where). ``--only`` runs some sections.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECTIONS = ("delivery", "publish", "actions", "flows", "dbos", "recovery", "scale")


@dataclass(frozen=True)
class Sizes:
    exporter_records: int = 50_000
    forwarder_records: int = 50_000
    spool_rounds: int = 5000
    publish_rounds: int = 2000
    flushes: int = 500
    tasks: int = 400
    work_tasks: int = 60
    steps_total: int = 1000
    signal_rounds: int = 60
    e2e_flows: int = 2000
    dbos_threads: int = 32
    recovery_flows: int = 24
    scale: tuple[int, ...] = (100_000, 1_000_000)
    scale_rounds: int = 300


QUICK = Sizes(exporter_records=5000, forwarder_records=5000, spool_rounds=500, publish_rounds=300, flushes=100,
              tasks=100, work_tasks=20, steps_total=200, signal_rounds=15, e2e_flows=200, recovery_flows=12,
              scale=(10_000, 50_000), scale_rounds=100)


class Tee(io.TextIOBase):
    """Everything printed goes to the terminal and into the log RESULTS.md quotes."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.log = io.StringIO()

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.stream.flush()
        return self.log.write(text)

    def flush(self) -> None:
        self.stream.flush()


def _section(name: str, errors: dict[str, str], call: Callable[[], Any]) -> Any:
    print(f"\n== {name}")
    started = time.perf_counter()
    try:
        result = call()
    except Exception as exc:
        traceback.print_exc(file=sys.stdout)
        errors[name] = f"{type(exc).__name__}: {exc}"
        return None
    print(f"   ({name}: {time.perf_counter() - started:.0f} s)")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the bench itself")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--output", type=Path, default=None,
                        help="where to write the results (default bench/RESULTS.md; none with --quick)")
    options = parser.parse_args(argv)
    only = {s.strip() for s in options.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")
    output = options.output
    if output is None and not options.quick and only == set(SECTIONS):
        output = Path(__file__).resolve().parent / "RESULTS.md"
    sizes = QUICK if options.quick else Sizes()
    tee = Tee(sys.stdout)
    sys.stdout = tee  # type: ignore[assignment]
    try:
        return _run(sizes, only, output, " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]))
    finally:
        sys.stdout = tee.stream


def _run(sizes: Sizes, only: set[str], output: Path | None, command: str) -> int:
    logging.basicConfig(level=logging.WARNING)
    from bench import app as bench_app
    from bench import dbos_peer, exporter, flows, publish, recovery, scale, spool, table, telemetry, workers
    from bench.receiver import receiver_process
    from bench.stats import pct, summary

    started = time.perf_counter()
    with bench_app.app.connection_for_write() as conn:
        client = conn.default_channel.client  # type: ignore[attr-defined]
        client.delete(bench_app.QUEUE, telemetry.OTEL_QUEUE)
        redis_version = str(client.info("server")["redis_version"])
    postgres_version = "not measured"
    if "dbos" in only:
        try:
            postgres_version = dbos_peer.ensure_postgres()
        except Exception as exc:
            postgres_version = f"unavailable ({type(exc).__name__}: {exc})"
    machine = table.machine(redis_version, postgres_version)
    for name, value in machine:
        print(f"{name}: {value}")
    print(f"sizes: {sizes}")
    figures: dict[str, Any] = {"spool": {}, "direct": {}, "http": {}}
    errors: dict[str, str] = {}
    pool = os.environ.get("CRUX_BENCH_POOL", "prefork")
    with receiver_process() as (url, _counts), tempfile.TemporaryDirectory(prefix="crux-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "delivery" in only:
            def delivery() -> None:
                figures["http"]["delivery_rps"] = exporter.run(url, count=sizes.exporter_records)
                appends, _ = spool.spool_append(sizes.spool_rounds)
                figures["spool"]["append_p50_ms"] = spool.pct(appends, 0.5) * 1000
                print(f"spool append (XADD of one action's 8 records): {spool.fmt_ms(appends)}  [goal <= 0.15 ms p50]")
                rate, counts = spool.forwarder_throughput(sizes.forwarder_records)
                figures["spool"]["delivery_rps"] = rate
                print(f"forwarder throughput (spool -> devtools): {rate:,.0f} records/s  [goal >= 20,000]  {counts}")
            _section("telemetry delivery", errors, delivery)
        if "publish" in only:
            figures["publish"] = _section("run_action publish cost", errors,
                                          lambda: publish.run(url, sizes.publish_rounds))
        if {"actions", "flows"} & only:
            otel_env = {"CRUX_BENCH_QUEUE": bench_app.QUEUE, "CRUX_BENCH_OTEL": "1"}
            with workers.running(otel_env, tmp / "worker-otel.log", pool=pool, name="bench-otel",
                                 queues=telemetry.OTEL_QUEUE):
                for path in ("spool", "direct", "http"):
                    env = {"CRUX_BENCH_QUEUE": bench_app.QUEUE, "CRUX_DEVTOOLS_URL": url,
                           "CRUX_SPOOL": "off" if path == "http" else "on"}
                    if path != "spool" and "actions" not in only:
                        continue
                    with workers.devtools_reading_spool(path == "direct", tmp), \
                            workers.running(env, tmp / f"worker-{path}.log", pool=pool, name=f"bench-{path}"):
                        if "actions" in only:
                            result = _section(f"action throughput, {path} path", errors, lambda p=path: telemetry.run(
                                p, url, sizes.tasks, sizes.work_tasks, sizes.flushes))
                            figures[path].update(result or {})
                        if path == "spool" and "flows" in only:
                            figures["flows"] = _section("flows: step overhead, signal -> completed", errors,
                                                        lambda: flows.run(url, sizes.steps_total, sizes.signal_rounds))
        if "flows" in only:
            def e2e() -> tuple[float, float]:
                env = {"CRUX_BENCH_QUEUE": bench_app.QUEUE, "CRUX_DEVTOOLS_URL": url, "CRUX_SPOOL": "on"}
                concurrency = os.cpu_count() or 1  # Celery's default: one pool process per core
                with workers.running(env, tmp / "worker-e2e-1.log", pool=pool, name="bench-e2e-1",
                                     concurrency=concurrency), \
                        workers.running(env, tmp / "worker-e2e-2.log", pool=pool, name="bench-e2e-2",
                                        concurrency=concurrency):
                    rate, seconds = flows.end_to_end(sizes.e2e_flows)
                print(f"3-step flows end to end, 2 workers (prefork, concurrency {concurrency} each, spool on): "
                      f"{rate:.0f} flows/s ({sizes.e2e_flows} flows in {seconds:.1f} s)")
                return rate, seconds
            figures["e2e"] = _section("flows: 3-step flows end to end, 2 workers", errors, e2e)
        if "dbos" in only:
            def dbos() -> dict[str, Any]:
                peer = dbos_peer.run("figures", "--total", str(sizes.steps_total), "--signals",
                                     str(sizes.signal_rounds))
                out = {key: pct(values, 50) * 1000 for key, values in peer.items()}
                for n in (10, 200):
                    print(f"DBOS step overhead ({n}-step workflows): {summary(peer[f'step_{n}'])}")
                print(f"DBOS send -> result: {summary(peer['send'])}")
                rate, seconds = dbos_peer.throughput(sizes.e2e_flows, threads=sizes.dbos_threads)
                out["rate"] = rate
                print(f"DBOS 3-step workflows, 2 processes x {sizes.dbos_threads} threads: {rate:.0f} workflows/s "
                      f"({sizes.e2e_flows} in {seconds:.1f} s)")
                return out
            figures["dbos"] = _section("DBOS on PostgreSQL (same run)", errors, dbos)
        if "recovery" in only:
            figures["recovery"] = _section("recovery after kill -9 of a whole worker", errors,
                                           lambda: recovery.run(tmp, sizes.recovery_flows))
    if "scale" in only:
        def scaled() -> dict[str, Any]:
            result = scale.run(list(sizes.scale), rounds=sizes.scale_rounds)
            for size, row in result["sizes"].items():
                print(f"{int(size):,} suspended flows: held {row['held']} ({row['suspended_read_back']:,} of "
                      f"{row['expected']:,} read back suspended, filled in {row['fill_s']:.1f} s); "
                      f"{row['bytes_per_flow']:,.0f} B of Redis memory per flow; list_flows(suspended, 100) p50 "
                      f"{row['list_p50_ms']:.2f} ms (next page {row['list_next_p50_ms']:.2f} ms); status() p50 "
                      f"{row['status_p50_ms']:.3f} ms; signal -> completed p50 {row['signal_p50_ms']:.1f} ms "
                      f"({row['signalled']} flows)")
            t, b = result["template"], result["breakdown"]
            print(f"one small suspended flow: keys {t['keys']} (MEMORY USAGE), hash fields (bytes) "
                  f"{t['hash_fields']}, encoding {t['hash_encoding']}; index entries in {t['indexes']}")
            print(f"memory per flow {b['per_flow']:,.0f} B = its own keys {b['own_keys']:,.0f} B + {b['indexes']} "
                  f"sorted-set index entries x {b['index_entry']:,.0f} B + {b['rest']:,.0f} B keyspace overhead")
            return result
        figures["scale"] = _section("suspended flows at scale (a redis-server of the bench's own)", errors, scaled)
    rows = build_rows(figures, sizes, only)
    for name, error in errors.items():
        rows.append(table.Row(f"section failed: {name}", error[:120], met=False))
    elapsed = time.perf_counter() - started
    print(f"\n{table.text_table(rows)}\n\n(total {elapsed / 60:.1f} min)")
    if output is not None:
        log = sys.stdout.log.getvalue() if isinstance(sys.stdout, Tee) else ""
        table.write(output, command, machine, rows, log, elapsed, NOTES)
        print(f"wrote {output}")
    return 0 if not errors else 1


NOTES = [
    "Action throughput: a no-op (and a 20 ms) task sent N at a time and drained, best of rounds interleaved "
    "across senders, one prefork worker with concurrency 1 per sender: the crux action and plain Celery tasks "
    "with `acks_late` on the same worker; the same plain task in a second worker whose pool child runs "
    "`CeleryInstrumentor` with an SDK `TracerProvider` and a `SimpleSpanProcessor` into an "
    "`InMemorySpanExporter` (the publishing side is not instrumented, for either). The spool path spools "
    "records to Redis and forwards them from a thread in the pool process; \"spool read by devtools\": the "
    "same, with `cruxcelery dev --redis` reading the stream itself (the workers' forwarders stand by); the "
    "HTTP path posts from an in-process queue.",
    "Spool append, flush, forwarder and HttpExporter rows are issue 8's: one action's 8 records appended "
    "with one XADD; the flush at the end of an action run in-process; records/s from a spooled backlog "
    "(forwarder) and from an in-process queue (HttpExporter) to the test receiver in its own process.",
    "`run_action` publish cost: inside one action run in-process with the spool exporter, "
    "`ctx.crux.run_action` of a crux action and `apply_async` of the same task, alternately, p50 of each.",
    "Flow step overhead: each `scope.step` of a no-op in fresh 10- and 200-step flows run in-process "
    "(`run_inline`) with the spool exporter; DBOS: each `@DBOS.step` call in a `@DBOS.workflow`, "
    "PostgreSQL on the same machine. \"Flat\": the 200-step p50 within 1.5x of the 10-step p50.",
    "Signal -> completed: `signal()` to the flow's status reading `completed` through a warm worker; "
    "DBOS: `DBOS.send` to a workflow waiting in `DBOS.recv`, to its `get_result()`.",
    "3-step flows end to end: `start()` of N flows from the bench process to all completed, two prefork "
    "workers at Celery's default concurrency (one pool process per core) with the spool on; DBOS: two "
    "processes each running N/2 3-step workflows from 32 threads calling the workflow (DBOS's in-process "
    "execution; 32 threads did better than 4, 16 or 64 here).",
    "Suspended flows at scale: on a redis-server of the bench's own, one real flow is run to suspension and "
    "its keys replicated with fresh ids (redis-cli --pipe); held = every flow's stored status read back "
    "`suspended` and the status index holding each; memory = INFO used_memory added / flows; a sample of "
    "flows is signalled and completes through a worker at each size.",
    "Recovery: a prefork worker (concurrency 4) holding flows mid-step, reserved and queued is SIGKILLed "
    "(its whole process group); a new worker starts at once; each flow's time from the kill to its step "
    "running again; `CRUX_FLOW_LEASE_S`=5.",
]


def _ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def build_rows(figures: dict[str, Any], sizes: Sizes, only: set[str]) -> list[Any]:
    from bench.table import Row, ratio

    rows: list[Row] = []
    for path, label in (("spool", "spool"), ("direct", "spool read by devtools"), ("http", "HTTP")):
        f = figures.get(path) or {}
        if "noop_crux" in f:
            for kind, what, goal in (("noop", "no-op", 0.90), ("work", "20 ms", 0.98)):
                crux = f[f"{kind}_crux"]
                for peer, peer_label in (("plain_late", "Celery acks_late"), ("otel", "OTel-instrumented")):
                    value = f[f"{kind}_{peer}"]
                    rows.append(Row(f"{what} action throughput, telemetry on ({label}) vs {peer_label}",
                                    f"{crux:,.1f}/s", f"{value:,.1f}/s", ratio(crux, value), f">= {goal:.2f}",
                                    crux / value >= goal))
    spool, http = figures.get("spool") or {}, figures.get("http") or {}
    if "append_p50_ms" in spool:
        rows.append(Row("spool append of one action's 8 records, p50", _ms(spool["append_p50_ms"]),
                        goal="<= 0.15 ms", met=spool["append_p50_ms"] <= 0.15))
    if "flush_p50_ms" in spool:
        rows.append(Row("flush added to an action (spool), p50", _ms(spool["flush_p50_ms"]),
                        f"HTTP path {_ms(http['flush_p50_ms'])}" if "flush_p50_ms" in http else "—", goal="<= 0.15 ms",
                        met=spool["flush_p50_ms"] <= 0.15))
    if "delivery_rps" in spool:
        rows.append(Row("forwarder delivery (spool -> devtools)", f"{spool['delivery_rps']:,.0f} records/s",
                        goal=">= 20,000/s", met=spool["delivery_rps"] >= 20_000))
    if "delivery_rps" in http:
        rows.append(Row("HttpExporter delivery (queue -> devtools)", f"{http['delivery_rps']:,.0f} records/s",
                        goal=">= 20,000/s", met=http["delivery_rps"] >= 20_000))
    pub = figures.get("publish")
    if pub:
        rows.append(Row("run_action publish cost, p50", _ms(pub["run_action_p50_ms"]),
                        f"apply_async {_ms(pub['apply_async_p50_ms'])}", f"{pub['ratio']:.2f}", "<= 1.10",
                        pub["ratio"] <= 1.10))
    fl, dbos = figures.get("flows") or {}, figures.get("dbos") or {}
    for n in (10, 200):
        key = f"step_{n}_p50_ms"
        if key in fl:
            value = float(fl[key])
            step_ms: float | None = dbos.get(f"step_{n}")
            flat = n == 10 or value <= 1.5 * fl.get("step_10_p50_ms", value)
            rows.append(Row(f"flow step overhead, {n}-step flows, p50", _ms(value),
                            f"DBOS step {_ms(step_ms)}" if step_ms else "—", ratio(value, step_ms) if step_ms else "—",
                            "<= 0.3 ms" + (", flat" if n == 200 else ""), value <= 0.3 and flat))
    if "signal_p50_ms" in fl:
        send_ms: float | None = dbos.get("send")
        rows.append(Row("signal -> completed, warm worker, p50", _ms(fl["signal_p50_ms"]),
                        f"DBOS send -> result {_ms(send_ms)}" if send_ms else "—",
                        ratio(fl["signal_p50_ms"], send_ms) if send_ms else "—", "<= 5 ms", fl["signal_p50_ms"] <= 5))
    e2e = figures.get("e2e")
    if e2e:
        rate: float | None = dbos.get("rate")
        rows.append(Row("3-step flows end to end, 2 workers", f"{e2e[0]:,.0f} flows/s",
                        f"DBOS {rate:,.0f} workflows/s" if rate else "—", ratio(e2e[0], rate) if rate else "—",
                        ">= 3x DBOS", e2e[0] >= 3 * rate if rate else None))
    sc = figures.get("scale")
    if sc:
        ordered = sorted(sc["sizes"].items(), key=lambda kv: int(kv[0]))
        for size, row in ordered:
            rows.append(Row(f"suspended flows held: {int(size):,}",
                            f"{'held' if row['held'] else 'NOT held'} ({row['suspended_read_back']:,} read back)",
                            goal="held", met=row["held"]))
        size, top = ordered[-1]
        label = f"{int(size):,}"
        rows.append(Row(f"list_flows(status=\"suspended\", limit=100) at {label}, p50", _ms(top["list_p50_ms"]),
                        goal="<= 5 ms", met=top["list_p50_ms"] <= 5))
        rows.append(Row(f"status() at {label}, p50", _ms(top["status_p50_ms"]), goal="<= 1 ms",
                        met=top["status_p50_ms"] <= 1))
        b = sc.get("breakdown") or {}
        where = (f"flow hash {b['own_keys']:,.0f} B + {b['indexes']} index entries x {b['index_entry']:,.0f} B"
                 if b else "—")
        rows.append(Row(f"Redis memory per small suspended flow (at {label})", f"{top['bytes_per_flow']:,.0f} B",
                        where, goal="<= 1 KB", met=top["bytes_per_flow"] <= 1024))
    rec = figures.get("recovery")
    if rec:
        goal_s = rec["lease_s"] + 5
        rows.append(Row("recovery after kill -9 of a whole worker: last flow resumed",
                        f"{rec['max_s']:.1f} s ({rec['flows']} flows)", f"lease {rec['lease_s']} s",
                        goal=f"<= lease + 5 s ({goal_s} s)", met=rec["max_s"] <= goal_s))
    return rows


if __name__ == "__main__":
    sys.exit(main())
