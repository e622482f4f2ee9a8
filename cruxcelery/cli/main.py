"""``cruxcelery``: the command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

SIGPIPE_EXIT = 141
"""The exit code when the reader of stdout went away (``cruxcelery flows list | head``): a shell's
128 + SIGPIPE, what a command killed by the signal reports."""


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand. When the reader of stdout goes away, stop quietly (no traceback)."""
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # here, not at exit: a closed pipe fails now, where it is caught
    except BrokenPipeError:
        _silence_stdout()
        return SIGPIPE_EXIT
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit cannot fail again."""
    with contextlib.suppress(OSError, ValueError):  # stdout may have no file descriptor
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _dispatch(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="cruxcelery", description="Durable, observable Celery tasks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the reference app end to end and print its run tree")
    demo.add_argument("--app", default=None,
                      help="the Celery app module (default: tasks when importable, else cruxcelery.examples)")
    dev = commands.add_parser("dev", help="serve the devtools: record ingest, JSON API and web UI")
    dev.add_argument("--host", default="127.0.0.1", help="interface (beyond loopback: needs CRUX_DEVTOOLS_TOKEN)")
    dev.add_argument("--port", type=int, default=4400, help="port (default 4400)")
    dev.add_argument("--db", default=None, help="SQLite file (default: the user's data dir); ':memory:' keeps nothing")
    dev.add_argument("--redis", default=None, metavar="URL",
                     help="read flow snapshots and the telemetry spool from this Redis")
    dev.add_argument("--allowed-host", action="append", default=None, metavar="NAME", dest="allowed_hosts",
                     help="a name besides localhost that pages and clients may use to reach a loopback devtools"
                          " (repeatable; also CRUX_DEVTOOLS_ALLOWED_HOSTS, comma separated)")
    forward = commands.add_parser("forward", help="forward the telemetry spool to devtools until SIGTERM/SIGINT")
    forward.add_argument("--app", default=None, metavar="MODULE",
                         help="read the settings (and the broker) from this Celery app module's Crux")
    forward.add_argument("--redis", default=None, metavar="URL", help="the spool's Redis (overrides the app's)")
    forward.add_argument("--devtools", default=None, metavar="URL", help="the devtools base URL (overrides the app's)")
    forward.add_argument("--key-prefix", default=None, help="key prefix of the spool stream (default: CRUX_KEY_PREFIX)")
    import cruxcelery.cli.doctor as cli_doctor
    import cruxcelery.cli.flows as cli_flows
    import cruxcelery.cli.records as cli_records

    cli_flows.register(commands)
    cli_records.register(commands)
    cli_doctor.register(commands)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if options.command == "demo":
        import cruxcelery.cli.demo as demo_module

        return demo_module.run(options.app)
    if options.command == "dev":
        from cruxcelery.devtools.server import serve

        return serve(options.host, options.port, options.db, options.redis, options.allowed_hosts)
    if options.command == "forward":
        return _forward(options)
    handler = getattr(options, "handler", None)
    return int(handler(options)) if handler is not None else 2


def _forward(options: argparse.Namespace) -> int:
    import importlib
    import os
    from typing import Any

    from pydantic import ValidationError

    from cruxcelery.delivery.build import telemetry_redis_url
    from cruxcelery.delivery.forward import run_forwarder
    from cruxcelery.errors import ConfigurationError
    from cruxcelery.settings import CruxSettings

    overrides: dict[str, Any] = {}
    if options.devtools:
        overrides["devtools_url"] = options.devtools
    if options.key_prefix:
        overrides["key_prefix"] = options.key_prefix
    broker: str | None = None
    try:
        if options.app:
            from cruxcelery.core.runtime import Runtime

            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())  # like `celery -A`: the app lives in the working dir
            importlib.import_module(options.app)
            runtime = Runtime.current()
            if runtime is None:
                print(f"cruxcelery forward: {options.app} builds no Crux(app)", file=sys.stderr)
                return 2
            settings = CruxSettings.model_validate({**runtime.settings.model_dump(), **overrides})
            broker = str(runtime.app.conf.broker_url or "") or None
        else:
            settings = CruxSettings.from_env(**overrides)
    except (ConfigurationError, ValidationError) as exc:
        print(f"cruxcelery forward: {exc}", file=sys.stderr)
        return 2
    url = options.redis or telemetry_redis_url(settings, broker)
    if not url:
        print("cruxcelery forward: no Redis: pass --redis URL, or --app with a Redis broker or CRUX_REDIS_URL",
              file=sys.stderr)
        return 2
    if not settings.devtools_url:
        print("cruxcelery forward: no devtools URL: pass --devtools URL or set CRUX_DEVTOOLS_URL", file=sys.stderr)
        return 2
    logging.getLogger("cruxcelery").setLevel(logging.INFO)
    return run_forwarder(settings, url)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cruxcelery")
    except PackageNotFoundError:
        return "unknown (not installed)"


if __name__ == "__main__":
    sys.exit(main())
