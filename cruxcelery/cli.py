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
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if options.command == "demo":
        from cruxcelery import demo as demo_module

        return demo_module.run(options.app)
    return 2


if __name__ == "__main__":
    sys.exit(main())
