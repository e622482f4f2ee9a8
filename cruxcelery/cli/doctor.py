"""``cruxcelery doctor``: check an app's deployment, one finding per check (ok / warn / fail).

Checks: the app builds a ``Crux``; it is JSON-only; the broker answers; the flow store's Redis
answers (and is recent enough); the broker's visibility timeout against the longest countdown
cruxcelery publishes (the timer hop) and the recovery settings; devtools answers (when
``CRUX_DEVTOOLS_URL`` is set); every live worker registered the flows' tasks; the telemetry
spool's backlog. Exits 1 when a check fails."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from cruxcelery.cli.common import FINDING, OK, Finding, add_app_argument, find_celery, find_crux, load_module, run
from cruxcelery.cli.workers import check_workers

if TYPE_CHECKING:
    from cruxcelery.crux import Crux

__all__ = ["Finding", "diagnose", "register"]

_VISIBILITY_BROKERS = ("redis", "rediss", "sentinel", "sqs", "unix")
_REDIS_DEFAULT_VISIBILITY_S = 3600.0
SPOOL_BACKLOG_WARN = 1000


def register(commands: Any) -> None:
    doctor = commands.add_parser("doctor", help="check the app's broker, Redis, settings, devtools and workers",
                                 description=__doc__)
    add_app_argument(doctor)
    doctor.add_argument("--timeout", type=float, default=1.0, metavar="SECONDS",
                        help="how long to wait for workers to answer (default 1)")
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.set_defaults(handler=lambda options: run(_doctor, options, "doctor"))


def _doctor(options: argparse.Namespace) -> int:
    spec, module, attr = load_module(options.app)
    findings = diagnose(spec, find_crux(module, attr), find_celery(module, attr), options.timeout)
    failed = sum(f.status == "fail" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    if options.json:
        print(json.dumps({"app": spec, "findings": [asdict(f) for f in findings], "ok": not failed}, indent=2))
    else:
        print(f"cruxcelery doctor: the app {spec}")
        width = max(len(f.check) for f in findings)
        for finding in findings:
            label = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[finding.status]
            print(f"  {label}  {finding.check.ljust(width)}  {finding.message}")
        print(f"\n{failed} failed, {warned} warning{'s' if warned != 1 else ''}, "
              f"{len(findings) - failed - warned} ok")
    return FINDING if failed else OK


def diagnose(spec: str, crux: Crux | None, celery: Any, timeout_s: float = 1.0) -> list[Finding]:
    """Every finding about the app ``spec`` (its ``Crux`` and Celery app, either may be missing)."""
    findings: list[Finding] = []
    app = crux.app if crux is not None else celery
    if crux is None:
        where = "a Celery app but no Crux" if app is not None else "no Celery app and no Crux"
        findings.append(Finding("fail", "app", f"{spec} has {where}: add crux = Crux(celery_app) to it, or pass "
                                               "--app MODULE (or set CRUX_APP) to the module that does"))
        if app is None:
            return findings
    else:
        names = sorted(crux.flows.handles)
        flows = f"{len(names)} flow{'s' if len(names) != 1 else ''}" + (f" ({', '.join(names)})" if names else "")
        findings.append(Finding("ok", "app", f"{spec} builds Crux(app) with {flows}"))
    findings.append(_json_only(app))
    broker = _broker(app)
    findings.append(broker)
    if crux is None:
        return findings
    findings.append(_store(crux))
    findings.extend(_timing(crux))
    findings.append(_devtools(crux))
    if broker.status == "fail":
        findings.append(Finding("warn", "workers", "not asked: the broker does not answer"))
    else:
        findings.extend(_workers(crux, timeout_s))
    findings.append(_spool(crux))
    return findings


def _json_only(app: Any) -> Finding:
    from cruxcelery.core.runtime import refuse_pickle
    from cruxcelery.errors import ConfigurationError

    try:
        refuse_pickle(app)
    except ConfigurationError as exc:
        return Finding("fail", "json-only", str(exc))
    return Finding("ok", "json-only", "accepts and produces JSON only")


def _safe_url(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def _broker(app: Any) -> Finding:
    url = _safe_url(str(app.conf.broker_url or "amqp://localhost (Celery's default)"))
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, interval_max=0.2, timeout=3)
    except Exception as exc:
        return Finding("fail", "broker", f"{url} does not answer ({type(exc).__name__}: {exc}): start it, or fix "
                                         "the app's broker_url")
    return Finding("ok", "broker", f"{url} answers")


def _store(crux: Crux) -> Finding:
    from cruxcelery.errors import ConfigurationError

    try:
        url = _safe_url(crux.flows.redis_url())
    except ConfigurationError as exc:
        return Finding("fail", "flow store", str(exc))
    try:
        info = crux.flows.store.redis.info("server")
    except Exception as exc:
        return Finding("fail", "flow store", f"Redis at {url} does not answer ({type(exc).__name__}: {exc}): "
                                             "start it, or fix CRUX_REDIS_URL")
    version = str(info.get("redis_version", "0"))
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    where = f"Redis {version} at {url} (key prefix {crux.settings.key_prefix!r})"
    if numbers < (6, 2):
        return Finding("fail", "flow store", f"{where}: flows need Redis 6.2 or later (GETDEL); upgrade Redis")
    return Finding("ok", "flow store", f"{where} answers")


def _visibility_timeout(app: Any) -> float | None:
    scheme = str(app.conf.broker_url or "").split("://", 1)[0].split("+", 1)[0]
    if scheme not in _VISIBILITY_BROKERS:
        return None
    options = app.conf.broker_transport_options or {}
    return float(options.get("visibility_timeout", _REDIS_DEFAULT_VISIBILITY_S))


def _timing(crux: Crux) -> list[Finding]:
    from cruxcelery.core.scheduling import hop_s

    settings = crux.settings
    hop = hop_s(crux)
    lease, sweep = settings.flow_lease_s, settings.sweep_interval_s
    findings: list[Finding] = []
    visibility = _visibility_timeout(crux.app)
    if visibility is None:
        findings.append(Finding("ok", "timers", f"the longest countdown is {hop:g} s (the timer hop); the broker "
                                                "has no visibility timeout to outlast"))
    else:
        about = f"the longest countdown (timer hop) is {hop:g} s, the broker's visibility timeout {visibility:g} s"
        fix = ("lower CRUX_TIMER_HOP_S (or unset it: half the visibility timeout) or raise "
               "broker_transport_options['visibility_timeout']")
        if hop >= visibility:
            findings.append(Finding("fail", "timers", f"{about}: the broker redelivers every wake-up before it is "
                                                      f"due (celery #2599): {fix}"))
        elif hop > visibility / 2:
            findings.append(Finding("warn", "timers", f"{about}: keep the hop under half the timeout: {fix}"))
        else:
            findings.append(Finding("ok", "timers", about))
        long_tasks = _tasks_longer_than(crux.app, visibility)
        if long_tasks:
            findings.append(Finding("warn", "time limits", f"{', '.join(long_tasks)} may run longer than the "
                                    f"visibility timeout ({visibility:g} s): the broker redelivers an unacknowledged "
                                    "message after it (acks_late); raise the timeout above the longest time limit"))
    recovery = (f"a dead worker's flow resumes within CRUX_FLOW_LEASE_S + CRUX_SWEEP_INTERVAL_S = "
                f"{lease:g} + {sweep:g} s")
    if sweep > lease:
        findings.append(Finding("warn", "recovery", f"{recovery}: the sweep interval is longer than the lease; "
                                                    "lower CRUX_SWEEP_INTERVAL_S (default 1)"))
    elif visibility is not None and lease + sweep >= visibility:
        findings.append(Finding("warn", "recovery", f"{recovery}, not before the broker redelivers ({visibility:g} s):"
                                                    " lower CRUX_FLOW_LEASE_S or raise the visibility timeout"))
    else:
        findings.append(Finding("ok", "recovery", recovery))
    return findings


def _tasks_longer_than(app: Any, seconds: float) -> list[str]:
    default = app.conf.task_time_limit
    found = []
    for name, task in sorted(app.tasks.items()):
        limit = getattr(task, "time_limit", None) or default
        if limit is not None and float(limit) > seconds and not name.startswith("celery."):
            found.append(f"{name} (time limit {float(limit):g} s)")
    return found


def _devtools(crux: Crux) -> Finding:
    url = crux.settings.devtools_url
    if not url:
        return Finding("ok", "devtools", "CRUX_DEVTOOLS_URL is not set: no records are sent")
    import httpx

    token = crux.settings.devtools_token
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    try:
        response = httpx.get(f"{url}/api/health", headers=headers, timeout=3.0)
    except httpx.HTTPError as exc:
        return Finding("warn", "devtools", f"{url} does not answer ({type(exc).__name__}): start it with "
                                           "cruxcelery dev, or fix CRUX_DEVTOOLS_URL")
    if response.status_code != 200:
        return Finding("warn", "devtools", f"{url}/api/health answered {response.status_code}: check "
                                           "CRUX_DEVTOOLS_TOKEN and that the URL is a cruxcelery devtools")
    return Finding("ok", "devtools", f"{url} answers")


def _spool(crux: Crux) -> Finding:
    from cruxcelery.delivery.build import spool_key
    from cruxcelery.delivery.extension import TelemetryDelivery
    from cruxcelery.telemetry.spool.group import spool_stats
    from cruxcelery.telemetry.spool.stream import spool_client

    delivery = crux.extension(TelemetryDelivery)
    url = delivery.spool_url if delivery is not None else None
    if url is None:
        how = "over HTTP from each process" if crux.settings.devtools_url else "nowhere but local exporters"
        return Finding("ok", "telemetry", f"no spool: records go {how}")
    try:
        stats = spool_stats(spool_client(url), spool_key(crux.settings))
    except Exception as exc:
        return Finding("fail", "telemetry", f"the spool's Redis at {_safe_url(url)} does not answer "
                                            f"({type(exc).__name__}): start it, or fix CRUX_TELEMETRY_REDIS_URL")
    backlog = f"spool {spool_key(crux.settings)}: {stats.unread or 0} unread, {stats.pending} pending"
    lost = stats.trimmed_unread + stats.lost_pending
    if lost:
        return Finding("warn", "telemetry", f"{backlog}; {lost} entries were trimmed before delivery: raise "
                                            "CRUX_SPOOL_MAX_ENTRIES or run more forwarders (cruxcelery forward)")
    if (stats.unread or 0) > SPOOL_BACKLOG_WARN:
        return Finding("warn", "telemetry", f"{backlog}: is a forwarder running? (CRUX_FORWARDER, or run "
                                            "cruxcelery forward)")
    return Finding("ok", "telemetry", backlog)


def _workers(crux: Crux, timeout_s: float) -> list[Finding]:

    return check_workers(crux, timeout_s)
