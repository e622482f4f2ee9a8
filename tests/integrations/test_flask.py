"""The Flask extension and the example app (examples/flask_app) through Flask's test client,
a real prefork worker (``celery -A examples.flask_app.worker``) and real Redis (db 6)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask

from cruxcelery import ConfigurationError
from cruxcelery.integrations.flask import CruxCelery
from examples.flask_app.app import create_app
from tests.integrations.redis_cleanup import REDIS, WORKER_LEFTOVERS, client, delete_created, wait_for
from tests.workers import subprocess_worker

pytestmark = pytest.mark.subprocess
ACME = {"Authorization": "Bearer token-acme"}
GLOBEX = {"Authorization": "Bearer token-globex"}


def _config(tag: str, queue: str) -> dict[str, Any]:
    return {"CELERY_BROKER_URL": REDIS, "CELERY_RESULT_BACKEND": REDIS, "CELERY_TASK_DEFAULT_QUEUE": queue,
            "CRUX_REDIS_URL": REDIS, "CRUX_KEY_PREFIX": f"cxflask-{tag}", "WRITER_SIGNATURE": f"signed {tag}"}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The example app in this process (the web side) and its worker in a subprocess, both
    configured the same way (the worker through ``FLASK_*`` environment variables)."""
    tag = uuid.uuid4().hex[:8]
    queue = f"cx-flask-{tag}"
    config = _config(tag, queue)
    app = create_app(config)
    env = {f"FLASK_{key}": str(value) for key, value in config.items()}
    try:
        with subprocess_worker(tmp_path_factory.mktemp("flask"), app="examples.flask_app.worker", queue=queue,
                               env=env) as worker:
            yield app, worker, tag
            worker.warm_shutdown()
    finally:
        app.extensions["cruxcelery"].crux.close()
        delete_created(f"cxflask-{tag}*", f"*{queue}*", *WORKER_LEFTOVERS)


def _flow(http: Any, flow_id: str, headers: dict[str, str] = ACME) -> dict[str, Any]:
    response = http.get(f"/flows/{flow_id}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def test_start_suspend_reject_a_bad_payload_approve_complete(web: Any) -> None:
    app, worker, tag = web
    http = app.test_client()
    started = http.post("/drafts/d1/writer", json={"brief": "Durable flows survive worker restarts"}, headers=ACME)
    assert started.status_code == 202, started.get_data(as_text=True)
    flow_id = started.get_json()["flowId"]

    shown = wait_for(lambda: _flow(http, flow_id), lambda body: body["status"] == "suspended")
    assert shown["status"] == "suspended", worker.log()[-3000:]
    assert shown["suspendedAt"] == "approval"
    assert shown["waitingFor"]["kind"] == "signal" and shown["waitingFor"]["name"] == "approval"
    assert "approved" in shown["waitingFor"]["schema"]["properties"]
    assert [step["name"] for step in shown["steps"]] == ["plan"]
    assert shown["steps"][0]["attempts"] == 1 and shown["steps"][0]["durationMs"] >= 0

    bad = http.post(f"/flows/{flow_id}/approval", json={"approved": "maybe", "feedback": 7}, headers=ACME)
    assert bad.status_code == 400
    errors = bad.get_json()["errors"]
    assert {tuple(e["loc"]) for e in errors} == {("approved",), ("feedback",)}
    assert all(e["msg"] and e["type"] for e in errors)
    not_json = http.post(f"/flows/{flow_id}/approval", data="approved", headers=ACME)
    assert not_json.status_code == 400 and not_json.get_json()["errors"]
    after = _flow(http, flow_id)
    assert after["status"] == "suspended" and after["suspendedAt"] == "approval"
    assert after["steps"] == shown["steps"]

    approved = http.post(f"/flows/{flow_id}/approval", json={"approved": True, "feedback": "shorter"}, headers=ACME)
    assert approved.status_code == 202, approved.get_data(as_text=True)
    done = wait_for(lambda: _flow(http, flow_id), lambda body: body["status"] == "completed")
    assert done["status"] == "completed", worker.log()[-3000:]
    assert [step["name"] for step in done["steps"]] == ["plan", "write"]
    assert done["waitingFor"] is None
    draft = done["output"]["draft"]
    assert "## section on durable" in draft and "shorter" in draft
    assert f"-- signed {tag}" in draft  # read from the Flask config inside the worker's task: app context

    again = http.post(f"/flows/{flow_id}/approval", json={"approved": True}, headers=ACME)
    assert again.status_code == 409


def test_auth_and_tenant_checks_guard_every_endpoint(web: Any) -> None:
    app, _, _ = web
    http = app.test_client()
    assert http.post("/drafts/d1/writer", json={"brief": "x"}).status_code == 401
    assert http.post("/drafts/d1/writer", json={"brief": "x"},
                     headers={"Authorization": "Bearer nope"}).status_code == 401
    assert http.post("/drafts/nope/writer", json={"brief": "x"}, headers=ACME).status_code == 404
    invalid = http.post("/drafts/d1/writer", json={"brief": ""}, headers=ACME)
    assert invalid.status_code == 400 and [e["loc"] for e in invalid.get_json()["errors"]] == [["brief"]]

    flow_id = http.post("/drafts/d2/writer", json={"brief": "tenant checks"}, headers=ACME).get_json()["flowId"]
    assert http.get(f"/flows/{flow_id}").status_code == 401
    assert http.get(f"/flows/{flow_id}", headers=GLOBEX).status_code == 403
    assert http.post(f"/flows/{flow_id}/approval", json={"approved": True}, headers=GLOBEX).status_code == 403
    assert http.get("/flows/flow_doesnotexist", headers=ACME).status_code == 404
    assert http.get("/flows/bad id!", headers=ACME).status_code == 404
    wait_for(lambda: _flow(http, flow_id), lambda body: body["status"] == "suspended")
    assert _flow(http, flow_id)["status"] == "suspended"  # the other tenant's approval did nothing


def test_the_wrong_tenant_enqueues_nothing() -> None:
    """An app whose queue no worker consumes: a refused start leaves the queue empty and stores
    no flow; an accepted one (the control) puts exactly one message there."""
    tag = uuid.uuid4().hex[:8]
    queue = f"cx-flask-idle-{tag}"
    app = create_app(_config(tag, queue))
    conn = client()
    try:
        http = app.test_client()
        assert http.post("/drafts/d1/writer", json={"brief": "not yours"}, headers=GLOBEX).status_code == 403
        assert http.post("/drafts/g1/writer", json={"brief": "not yours"}, headers=ACME).status_code == 403
        assert http.post("/drafts/d1/writer", json={"brief": "nobody"}).status_code == 401
        assert conn.llen(queue) == 0
        assert list(conn.scan_iter(match=f"cxflask-{tag}*")) == []

        accepted = http.post("/drafts/d1/writer", json={"brief": "yours"}, headers=ACME)
        assert accepted.status_code == 202
        assert conn.llen(queue) == 1
        assert list(conn.scan_iter(match=f"cxflask-{tag}*"))
    finally:
        conn.close()
        app.extensions["cruxcelery"].crux.close()
        delete_created(f"cxflask-{tag}*", f"*{queue}*")


def test_the_extension_binds_celery_and_crux_to_the_flask_config() -> None:
    tag = uuid.uuid4().hex[:8]
    app = Flask(f"cx_ext_{tag}")
    app.config.update(CELERY_BROKER_URL=REDIS, CELERY_TASK_DEFAULT_QUEUE=f"cx-ext-{tag}",
                      CELERY={"task_acks_late": True}, CRUX_REDIS_URL=REDIS, CRUX_KEY_PREFIX=f"cxext-{tag}",
                      CRUX_FLOW_LEASE_S=12, CRUX_TELEMETRY=True)
    extension = CruxCelery()
    extension.init_app(app)
    try:
        state = app.extensions["cruxcelery"]
        assert extension.celery is state.celery and extension.crux is state.crux
        with app.app_context():
            assert extension.state() is state
        conf = state.celery.conf
        assert conf.task_default_queue == f"cx-ext-{tag}" and conf.task_acks_late is True
        assert conf.broker_url == REDIS and conf.result_backend == REDIS  # the backend defaults to CRUX_REDIS_URL
        assert conf.accept_content == ["json"] and conf.task_serializer == "json"
        settings = state.crux.settings
        assert settings.key_prefix == f"cxext-{tag}" and settings.flow_lease_s == 12 and settings.telemetry_enabled

        @state.celery.task(name=f"cx_ext_{tag}.which_app")
        def which_app() -> str:
            from flask import current_app

            return str(current_app.name)

        assert which_app.apply().get() == app.name  # tasks run inside the Flask app context
        with pytest.raises(ConfigurationError, match="already initialised"):
            extension.init_app(app)
    finally:
        app.extensions["cruxcelery"].crux.close()

    misspelt = Flask(f"cx_bad_{tag}")
    misspelt.config.update(CRUX_KEY_PREFX="typo", CELERY_BROKER_URL=REDIS)
    with pytest.raises(ConfigurationError, match="CRUX_KEY_PREFX"):
        CruxCelery(misspelt)
    with pytest.raises(ConfigurationError, match="not initialised"):
        CruxCelery().state(Flask(f"cx_none_{tag}"))


def test_idempotency_keys_are_the_tenants_and_bad_keys_or_bodies_are_refused() -> None:
    """Tenant B sending tenant A's key gets a flow of its own; the same key with other input is a
    conflict; a key that is not a valid id and a body nested too deep to read answer 400."""
    tag = uuid.uuid4().hex[:8]
    queue = f"cx-flask-idle-{tag}"
    app = create_app(_config(tag, queue))
    conn = client()
    try:
        http = app.test_client()
        key = {"Idempotency-Key": "req-1"}
        mine = http.post("/drafts/d1/writer", json={"brief": "a"}, headers={**ACME, **key})
        theirs = http.post("/drafts/g1/writer", json={"brief": "b"}, headers={**GLOBEX, **key})
        assert mine.status_code == theirs.status_code == 202
        assert mine.get_json()["flowId"] != theirs.get_json()["flowId"]
        again = http.post("/drafts/d1/writer", json={"brief": "a"}, headers={**ACME, **key})
        assert again.get_json()["flowId"] == mine.get_json()["flowId"]
        assert http.post("/drafts/d1/writer", json={"brief": "other"}, headers={**ACME, **key}).status_code == 409
        bad_key = http.post("/drafts/d1/writer", json={"brief": "a"}, headers={**ACME, "Idempotency-Key": "no way!"})
        assert bad_key.status_code == 400 and "Idempotency-Key" in bad_key.get_json()["error"]
        deep = "[" * 100_000 + "]" * 100_000
        assert http.post("/drafts/d1/writer", data=deep, content_type="application/json",
                         headers=ACME).status_code == 400
    finally:
        conn.close()
        app.extensions["cruxcelery"].crux.close()
        delete_created(f"cxflask-{tag}*", f"*{queue}*")

