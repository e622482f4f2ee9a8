"""A ``redis-server`` of the test's own on a spare port (never 6379), to stop, kill and restart."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis


def spare_port(below: int = 55_000) -> int:
    """A free port below ``below`` (a cluster node also listens on port + 10000)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < below and port != 6379:
            return port
    import random

    for _ in range(200):
        port = random.randint(20_000, below - 1)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no spare port")


class RedisServer:
    """``aof``: append-only file, fsync always (a SIGKILL loses nothing). ``rdb``: Redis's default
    snapshot points, so a graceful stop (``terminate``: SIGTERM, as a process manager restarts it)
    writes ``dump.rdb`` and the next start loads it. Neither: nothing survives a restart."""

    def __init__(self, directory: Path, *, aof: bool = True, port: int | None = None, rdb: bool = False) -> None:
        self.port = port or spare_port()
        self.directory = directory
        self.aof = aof
        self.rdb = rdb
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (.ci/run installs it)")
        save = ["--save", "3600 1 300 100 60 10000"] if self.rdb else ["--save", ""]
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", *save,
                   "--dir", str(self.directory), "--appendonly", "yes" if self.aof else "no",
                   "--appendfsync", "always", "--logfile", str(self.directory / "redis.log")]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start") from None
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        """SIGKILL: what is not in the AOF is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def terminate(self, timeout_s: float = 30.0) -> None:
        """SIGTERM: Redis shuts down gracefully (with ``rdb``, it saves its snapshot first)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=timeout_s)
        self.process = None

    def restart(self, down_s: float = 0.0) -> None:
        self.kill()
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        self.kill()
