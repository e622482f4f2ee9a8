"""An app whose broker and flow store point at a port nothing listens on."""

from __future__ import annotations

import socket

from cruxcelery import Crux, CruxSettings
from tests.celery_apps import json_app


def dead_port() -> int:
    """A port that was free a moment ago (nothing listens on it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


DEAD = f"redis://127.0.0.1:{dead_port()}/0"
app = json_app("crux_cli_down", DEAD, "crux-cli-down")
crux = Crux(app, CruxSettings.from_env(key_prefix="crux-cli-down", redis_timeout_s=1.0, telemetry_enabled=False))
