"""Serving devtools with uvicorn: ``cruxcelery dev`` and tests (``DevtoolsServer`` in a thread)."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from cruxcelery.devtools.api import DevtoolsConfig, create_app
from cruxcelery.devtools.auth import is_loopback
from cruxcelery.devtools.database import default_path

__all__ = ["ALLOWED_HOSTS_ENV", "DevtoolsServer", "allowed_hosts_from", "serve"]

TOKEN_ENV = "CRUX_DEVTOOLS_TOKEN"
ALLOWED_HOSTS_ENV = "CRUX_DEVTOOLS_ALLOWED_HOSTS"


def allowed_hosts_from(option: list[str] | None, env: str | None) -> tuple[str, ...]:
    """The names of ``--allowed-host`` (repeatable) and of ``CRUX_DEVTOOLS_ALLOWED_HOSTS`` (comma
    separated), lower-cased, in order, without duplicates."""
    names = [*(option or []), *(env or "").split(",")]
    return tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))


class _Server(uvicorn.Server):
    """Ends open event streams first on shutdown: uvicorn waits for open responses to finish."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        hub = getattr(getattr(self.config.app, "state", None), "hub", None)
        if hub is not None:
            hub.close()
        await super().shutdown(sockets)


class DevtoolsServer:
    """A devtools server on ``host:port`` (port 0: a free one) in a background thread.
    ``start()`` returns once it accepts connections; ``stop()`` shuts it down and joins."""

    def __init__(self, config: DevtoolsConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = create_app(config)
        if port == 0:
            with socket.socket() as probe:
                probe.bind((host, 0))
                port = probe.getsockname()[1]
        self.host, self.port = host, port
        uv_config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", lifespan="on",
                                   timeout_graceful_shutdown=5)
        self.server = _Server(uv_config)
        self.thread = threading.Thread(target=self.server.run, name="devtools-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> DevtoolsServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("devtools server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Shut down and join (nothing to join when it was never started)."""
        self.server.should_exit = True
        if self.thread.ident is not None:
            self.thread.join(timeout_s)

    def __enter__(self) -> DevtoolsServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(host: str = "127.0.0.1", port: int = 4400, db: str | None = None, redis_url: str | None = None,
          allowed_hosts: list[str] | None = None) -> int:
    """Run ``cruxcelery dev`` in the foreground until interrupted."""
    token = os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and not token:
        print(f"cruxcelery dev: listening on {host} needs {TOKEN_ENV} (ingest and UI then require it)")
        return 2
    path = db or str(default_path())
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    config = DevtoolsConfig(db=path, token=token if not is_loopback(host) else None,
                            allowed_hosts=allowed_hosts_from(allowed_hosts, os.environ.get(ALLOWED_HOSTS_ENV)))
    if redis_url:
        from cruxcelery.devtools.flowstore import RedisFlowSnapshots  # optional: needs the redis client

        prefix = os.environ.get("CRUX_KEY_PREFIX", "crux")
        config.spool_redis_url, config.spool_key = redis_url, f"{prefix}:telemetry"
        snapshots = RedisFlowSnapshots(redis_url, prefix)
        config.flow_snapshots = snapshots
        config.on_close.append(snapshots.close)
    app = create_app(config)
    # A run detail builds ~10 objects per record: with the default thresholds the collector walks
    # every live object many times per read (about half the time of a 5,000-span run).
    gc.set_threshold(100_000, 50, 100)
    shown = "localhost" if is_loopback(host) else host
    print(f"cruxcelery devtools on http://{shown}:{port}  (records in {path if path != ':memory:' else 'memory'})")
    print(f"point workers at it: CRUX_DEVTOOLS_URL=http://{shown}:{port}")
    if redis_url:
        print(f"reading the telemetry spool {config.spool_key} directly (workers' forwarders stand by)")
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5))
    server.run()
    return 0
