"""The Django app ``cruxcelery.integrations.django`` and the example project
(examples/django_project) through Django's test client, a real Celery worker (in a thread, solo
pool) and real Redis (db 6). Settings are configured here: the example's, with this module's
queue, key prefix and a SQLite file in a temporary directory."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.redis_cleanup import REDIS, WORKER_LEFTOVERS, client, delete_created, wait_for

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "django_project"
TAG = uuid.uuid4().hex[:8]
QUEUE = f"cx-django-{TAG}"
PREFIX = f"cxdjango-{TAG}"
ACME = {"HTTP_AUTHORIZATION": "Bearer token-acme"}
GLOBEX = {"HTTP_AUTHORIZATION": "Bearer token-globex"}


@pytest.fixture(scope="module")
def django_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import django
    from django.conf import settings

    if settings.configured:
        pytest.fail("Django is already configured in this process")
    saved_env = os.environ.get("DJANGO_SETTINGS_MODULE")
    sys.path.insert(0, str(PROJECT))
    try:
        from writersite import settings as example

        values = {name: getattr(example, name) for name in dir(example) if name.isupper()}
        values.update(
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                                   "NAME": str(tmp_path_factory.mktemp("django") / "db.sqlite3")}},
            CELERY_BROKER_URL=REDIS, CELERY_RESULT_BACKEND=REDIS, CELERY_TASK_DEFAULT_QUEUE=QUEUE,
            CRUXCELERY={**example.CRUXCELERY, "REDIS_URL": REDIS, "KEY_PREFIX": PREFIX},
            WRITER_SIGNATURE=f"signed {TAG}",
        )
        settings.configure(**values)
        django.setup()
        from cruxcelery.integrations import django as integration

        yield integration
    finally:
        from cruxcelery.integrations import django as integration

        integration.reset()
        sys.path.remove(str(PROJECT))
        if saved_env is None:
            os.environ.pop("DJANGO_SETTINGS_MODULE", None)
        else:
            os.environ["DJANGO_SETTINGS_MODULE"] = saved_env
        delete_created(f"{PREFIX}*", f"*{QUEUE}*", *WORKER_LEFTOVERS)


@contextmanager
def running_worker(integration: Any) -> Iterator[Any]:
    """A real Celery worker of the project's app in a thread, for as long as the block."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(integration.get_celery_app(), pool="solo", concurrency=1, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=10.0) as worker:
        yield worker


@pytest.fixture()
def http(django_project: Any) -> Any:
    from django.test import Client

    return Client()


def _flow(http: Any, flow_id: str, headers: dict[str, str] = ACME) -> dict[str, Any]:
    response = http.get(f"/flows/{flow_id}", **headers)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def test_the_app_builds_crux_for_the_projects_celery_app_and_discovers_flows(django_project: Any) -> None:
    import writersite
    from drafts.flows import writer

    crux = django_project.get_crux()
    assert django_project.get_celery_app() is writersite.celery_app
    assert crux.settings.key_prefix == PREFIX and crux.settings.redis_url == REDIS
    assert writer.task.name in writersite.celery_app.tasks
    assert "django_example.plan_draft" in writersite.celery_app.tasks
    assert django_project.autodiscover_flows() == ["drafts.flows"]
    assert writersite.celery_app.conf.task_default_queue == QUEUE


def test_the_wrong_tenant_enqueues_nothing(django_project: Any, http: Any) -> None:
    """No worker runs here: a refused start leaves the queue empty and stores no flow; the
    accepted one (the control) puts exactly one message there, then a worker finishes it."""
    conn = client()
    try:
        before = set(conn.scan_iter(match=f"{PREFIX}*"))
        post = {"data": {"brief": "not yours"}, "content_type": "application/json"}
        assert http.post("/drafts/d1/writer", **post, **GLOBEX).status_code == 403
        assert http.post("/drafts/g1/writer", **post, **ACME).status_code == 403
        assert http.post("/drafts/d1/writer", **post).status_code == 401
        assert conn.llen(QUEUE) == 0
        assert set(conn.scan_iter(match=f"{PREFIX}*")) == before

        accepted = http.post("/drafts/d1/writer", data={"brief": "yours"}, content_type="application/json", **ACME)
        assert accepted.status_code == 202
        assert conn.llen(QUEUE) == 1
        flow_id = accepted.json()["flowId"]
        with running_worker(django_project):
            assert wait_for(lambda: _flow(http, flow_id)["status"], lambda s: s == "suspended") == "suspended"
        assert django_project.get_crux().flows.delete(flow_id)
    finally:
        conn.close()


def test_start_suspend_reject_a_bad_payload_approve_complete(django_project: Any, http: Any) -> None:
    with running_worker(django_project):
        started = http.post("/drafts/d1/writer", data={"brief": "Durable flows survive worker restarts"},
                            content_type="application/json", **ACME)
        assert started.status_code == 202, started.content
        flow_id = started.json()["flowId"]

        shown = wait_for(lambda: _flow(http, flow_id), lambda body: body["status"] == "suspended")
        assert shown["status"] == "suspended" and shown["suspendedAt"] == "approval"
        assert shown["waitingFor"]["name"] == "approval" and "approved" in shown["waitingFor"]["schema"]["properties"]
        assert [step["name"] for step in shown["steps"]] == ["plan"]

        bad = http.post(f"/flows/{flow_id}/approval", data={"approved": "maybe", "feedback": 7},
                        content_type="application/json", **ACME)
        assert bad.status_code == 400
        assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {("approved",), ("feedback",)}
        not_json = http.post(f"/flows/{flow_id}/approval", data="approved", content_type="text/plain", **ACME)
        assert not_json.status_code == 400
        assert _flow(http, flow_id)["status"] == "suspended"

        assert http.post(f"/flows/{flow_id}/approval", data={"approved": True}, content_type="application/json",
                         **GLOBEX).status_code == 403
        assert http.get(f"/flows/{flow_id}").status_code == 401
        assert http.get("/flows/flow_doesnotexist", **ACME).status_code == 404

        approved = http.post(f"/flows/{flow_id}/approval", data={"approved": True, "feedback": "shorter"},
                             content_type="application/json", **ACME)
        assert approved.status_code == 202, approved.content
        done = wait_for(lambda: _flow(http, flow_id), lambda body: body["status"] == "completed")
        assert done["status"] == "completed", done
        assert [step["name"] for step in done["steps"]] == ["plan", "write"]
        draft = done["output"]["draft"]
        assert "## section on durable" in draft and "shorter" in draft and f"-- signed {TAG}" in draft
        assert http.post(f"/flows/{flow_id}/approval", data={"approved": True}, content_type="application/json",
                         **ACME).status_code == 409


def test_settings_errors_say_what_to_fix(django_project: Any) -> None:
    from cruxcelery import ConfigurationError
    from cruxcelery.integrations.web.common import settings_from

    with pytest.raises(ConfigurationError, match="CRUX_KEY_PREFX"):
        settings_from({"CRUX_KEY_PREFX": "typo"}, where="settings.CRUXCELERY")
    with pytest.raises(ConfigurationError, match="cannot be imported"):
        django_project._celery_app("nowhere.celery:app")


def test_a_bad_idempotency_key_or_a_body_nested_too_deep_is_a_400(django_project: Any, http: Any) -> None:
    conn = client()
    try:
        before, queued = set(conn.scan_iter(match=f"{PREFIX}*")), conn.llen(QUEUE)
        bad_key = http.post("/drafts/d1/writer", data={"brief": "a"}, content_type="application/json",
                            HTTP_IDEMPOTENCY_KEY="no way!", **ACME)
        assert bad_key.status_code == 400
        deep = "[" * 100_000 + "]" * 100_000
        assert http.post("/drafts/d1/writer", data=deep, content_type="application/json", **ACME).status_code == 400
        assert conn.llen(QUEUE) == queued and set(conn.scan_iter(match=f"{PREFIX}*")) == before
    finally:
        conn.close()


def test_the_example_project_does_not_run_in_debug_mode_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """A debug page would show the broker and store URLs (a Redis password with them)."""
    import runpy

    monkeypatch.delenv("DJANGO_DEBUG", raising=False)
    assert runpy.run_path(str(PROJECT / "writersite" / "settings.py"))["DEBUG"] is False

