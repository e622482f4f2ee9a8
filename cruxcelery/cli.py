"""``cruxcelery``: the command line."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cruxcelery", description="Durable, observable Celery tasks.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the reference app end to end and print its run tree")
    demo.add_argument("--app", default="tasks", help="the Celery app module (default: tasks)")
    dev = commands.add_parser("dev", help="serve the devtools: record ingest, JSON API and web UI")
    dev.add_argument("--host", default="127.0.0.1", help="interface (beyond loopback: needs CRUX_DEVTOOLS_TOKEN)")
    dev.add_argument("--port", type=int, default=4400, help="port (default 4400)")
    dev.add_argument("--db", default=None, help="SQLite file (default: the user's data dir); ':memory:' keeps nothing")
    dev.add_argument("--redis", default=None, metavar="URL", help="read flow snapshots from this Redis (read-only)")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if options.command == "demo":
        from cruxcelery import demo as demo_module

        return demo_module.run(options.app)
    if options.command == "dev":
        from cruxcelery.devtools.server import serve

        return serve(options.host, options.port, options.db, options.redis)
    return 2


if __name__ == "__main__":
    sys.exit(main())
