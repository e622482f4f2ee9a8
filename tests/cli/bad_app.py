"""A misconfigured app for ``cruxcelery doctor``: pickle switched on after ``Crux(app)``, a timer
hop longer than the broker's visibility timeout, a sweep interval longer than the flow lease, a
devtools URL nothing answers at (records spool in Redis database 4)."""

from __future__ import annotations

from cruxcelery import Crux, CruxSettings
from tests.celery_apps import json_app
from tests.cli.cli_app import REDIS
from tests.cli.down_app import dead_port

app = json_app("crux_cli_bad", REDIS, "crux-cli-bad", broker_transport_options={"visibility_timeout": 60})
crux = Crux(app, CruxSettings.from_env(
    key_prefix="crux-cli-bad", timer_hop_s=120, flow_lease_s=30, sweep_interval_s=45,
    devtools_url=f"http://127.0.0.1:{dead_port()}", forwarder="off"))
app.conf.accept_content = ["json", "pickle"]  # after Crux(app), which refuses it at construction


@app.task(name="cli.bad.slow", time_limit=600)
def slow() -> None:
    """A task allowed to run longer than the visibility timeout."""
