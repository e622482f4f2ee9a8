"""``cruxcelery doctor``: a good app with a live worker, a misconfigured one, one whose Redis is
down, and a worker that did not register the flows' tasks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cruxcelery.cli.workers import check_workers
from tests.cli import cli_app


def findings(out: str) -> dict[str, list[dict[str, str]]]:
    by_check: dict[str, list[dict[str, str]]] = {}
    for finding in json.loads(out)["findings"]:
        by_check.setdefault(finding["check"], []).append(finding)
    return by_check


def statuses(out: str) -> dict[str, str]:
    return {check: ",".join(f["status"] for f in group) for check, group in findings(out).items()}


def test_a_good_app_with_a_live_worker(cli: Any, cli_worker: Any) -> None:
    result = cli("doctor", "--timeout", "1")
    assert result.code == 0, result.out
    assert "ok    app" in result.out and "builds Crux(app) with 1 flow (cli-review)" in result.out
    assert "0 failed" in result.out
    as_json = cli("doctor", "--timeout", "1", "--json")
    assert as_json.code == 0 and json.loads(as_json.out)["ok"] is True
    assert statuses(as_json.out) == {
        "app": "ok", "json-only": "ok", "broker": "ok", "flow store": "ok", "timers": "ok", "recovery": "ok",
        "devtools": "ok", "workers": "ok", "telemetry": "ok",
    }
    workers = findings(as_json.out)["workers"][0]["message"]
    assert "1 worker(s) answered" in workers and "2 flow task(s)" in workers


def test_a_misconfigured_app(cli: Any) -> None:
    result = cli("doctor", "--json", "--timeout", "0.5", app="tests.cli.bad_app")
    assert result.code == 1
    found = findings(result.out)
    assert found["json-only"][0]["status"] == "fail" and "pickle" in found["json-only"][0]["message"]
    timers = found["timers"][0]
    assert timers["status"] == "fail" and "120 s" in timers["message"]
    assert "visibility timeout 60 s" in timers["message"]
    assert "CRUX_TIMER_HOP_S" in timers["message"]
    limits = found["time limits"][0]
    assert limits["status"] == "warn" and "cli.bad.slow (time limit 600 s)" in limits["message"]
    recovery = found["recovery"][0]
    assert recovery["status"] == "warn" and "CRUX_SWEEP_INTERVAL_S" in recovery["message"]
    devtools = found["devtools"][0]
    assert devtools["status"] == "warn" and "does not answer" in devtools["message"]
    assert "cruxcelery dev" in devtools["message"]
    spool = found["telemetry"][0]
    assert spool["status"] == "ok" and "spool crux-cli-bad:telemetry: 0 unread" in spool["message"]
    assert found["broker"][0]["status"] == "ok" and found["flow store"][0]["status"] == "ok"

    text = cli("doctor", "--timeout", "0.5", app="tests.cli.bad_app")
    assert text.code == 1 and "FAIL  json-only" in text.out and "2 failed" in text.out


def test_redis_down(cli: Any) -> None:
    result = cli("doctor", "--json", app="tests.cli.down_app")
    assert result.code == 1
    found = findings(result.out)
    assert found["broker"][0]["status"] == "fail" and "start it, or fix" in found["broker"][0]["message"]
    store = found["flow store"][0]
    assert store["status"] == "fail" and "does not answer" in store["message"] and "CRUX_REDIS_URL" in store["message"]
    assert found["workers"][0] == {"status": "warn", "check": "workers",
                                   "message": "not asked: the broker does not answer"}


def test_an_app_module_without_crux(cli: Any) -> None:
    result = cli("doctor", "--json", app="tests.celery_apps")
    assert result.code == 1
    assert findings(result.out)["app"][0]["status"] == "fail"
    missing = cli("doctor", app="tests.cli.nothing_here")
    assert missing.code == 2 and "cannot import the app module" in missing.err


class _Inspect:
    def __init__(self, registered: Any, queues: Any) -> None:
        self._registered, self._queues = registered, queues

    def registered(self) -> Any:
        return self._registered

    def active_queues(self) -> Any:
        return self._queues


def test_a_worker_that_did_not_register_the_flows(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = cli_app.QUEUE
    registered = {"good@h": ["crux.flow.cli-review", "crux.flows.wake", "cli.publish"],
                  "actions@h": ["cli.publish"], "elsewhere@h": ["cli.publish"]}
    queues = {"good@h": [{"name": queue}], "actions@h": [{"name": queue}], "elsewhere@h": [{"name": "other"}]}
    monkeypatch.setattr(cli_app.app.control, "inspect", lambda timeout: _Inspect(registered, queues))
    found = check_workers(cli_app.crux, 0.1)
    assert [(f.status, f.message.split(" ")[0]) for f in found] == [("fail", "actions@h")]
    assert "crux.flow.cli-review, crux.flows.wake but did not register it" in found[0].message

    monkeypatch.setattr(cli_app.app.control, "inspect", lambda timeout: _Inspect(
        {"other@h": ["cli.publish"]}, {"other@h": [{"name": "other"}]}))
    orphan = check_workers(cli_app.crux, 0.1)
    assert orphan[0].status == "warn" and f"no live worker consumes {queue}" in orphan[0].message

    monkeypatch.setattr(cli_app.app.control, "inspect", lambda timeout: _Inspect(None, None))
    silent = check_workers(cli_app.crux, 0.1)
    assert silent[0].status == "warn" and "no worker answered within 0.1 s" in silent[0].message
