"""Invalid args never reach the queue; pickle apps are refused; settings are typed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from celery import Celery

from cruxcelery import ConfigurationError, Crux, CruxSettings, InvalidArgs


def _queue_length(app, queue):
    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen(queue)


@pytest.mark.parametrize(("args", "kwargs"), [
    (({"topic": 3},), {}),
    ((), {"depth": 1}),
    (({"topic": "a"}, {"topic": "b"}), {}),
    (({"topic": "a"},), {"depth": 2}),
    (({"topic": "a", "depth": "deep"},), {}),
])
def test_invalid_args_raise_at_the_caller_and_publish_nothing(celery_test_app, args, kwargs):
    queue = "crux-tests-nothing-published"
    with pytest.raises(InvalidArgs) as info:
        celery_test_app.leaf.apply_async(args, kwargs, queue=queue)
    assert "t.leaf" in str(info.value)
    assert _queue_length(celery_test_app.app, queue) == 0


def test_invalid_args_message_names_the_field(celery_test_app):
    with pytest.raises(InvalidArgs, match="topic"):
        celery_test_app.leaf.delay({"depth": 1})


def test_args_may_be_a_dict_a_model_or_keywords(sink, celery_test_app):
    from tests.app import Topic

    results = [celery_test_app.leaf.delay({"topic": "a"}), celery_test_app.leaf.delay(Topic(topic="b")),
               celery_test_app.leaf.delay(topic="c")]
    assert [r.get(timeout=10)["topic"] for r in results] == ["a", "b", "c"]


def test_invalid_args_in_the_worker_fail_the_task_without_retry(sink, celery_test_app):
    result = celery_test_app.app.send_task("t.leaf", kwargs={"topic": ["not", "a", "string"]})
    with pytest.raises(Exception, match="invalid args"):
        result.get(timeout=10)
    assert result.state == "FAILURE"
    assert sink.wait_for(lambda s: s.of_type("run:end"))
    assert sink.of_type("run:end")[0]["status"] == "error"


@pytest.mark.parametrize("conf", [
    {"accept_content": ["json", "pickle"]},
    {"task_serializer": "pickle"},
    {"result_serializer": "pickle"},
    {"result_accept_content": ["application/x-python-serialize"]},
])
def test_an_app_that_accepts_pickle_is_refused(conf):
    app = Celery("pickly", broker="redis://127.0.0.1:6379/12")
    app.conf.update(conf)
    with pytest.raises(ConfigurationError, match="JSON-only"):
        Crux(app, CruxSettings())


def test_bad_settings_raise_a_configuration_error():
    with pytest.raises(ConfigurationError, match="flush_timeout_s"):
        CruxSettings.from_env({"CRUX_FLUSH_TIMEOUT_S": "soon"})
    with pytest.raises(ConfigurationError, match="CRUX_TELEMETRY"):
        CruxSettings.from_env({"CRUX_TELEMETRY": "maybe"})
    assert CruxSettings.from_env({"CRUX_FLUSH_TIMEOUT_S": "0.5"}).flush_timeout_s == 0.5


def test_importing_cruxcelery_connects_nothing():
    code = (
        "import cruxcelery, celery.signals as s;"
        "assert not s.before_task_publish.receivers and not s.task_prerun.receivers, 'hooks at import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
