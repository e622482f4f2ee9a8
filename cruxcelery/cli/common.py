"""What the ``cruxcelery`` subcommands share: ``--app MODULE`` (finding the app's ``Crux``), exit
codes, and error messages that say what to do next."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from cruxcelery.crux import Crux

OK, FINDING, USAGE = 0, 1, 2
"""Exit codes: 0 ok, 1 a finding or a refusal (unknown flow, rejected signal, a doctor failure),
2 a usage or configuration error (bad arguments, no app, bad JSON)."""


@dataclass(frozen=True)
class Finding:
    """One check of ``cruxcelery doctor``: ok, warn or fail."""

    status: Literal["ok", "warn", "fail"]
    check: str
    message: str

DEFAULT_APP = "tasks"


class CliError(Exception):
    """An error the CLI reports as one message (with what to do next) and an exit code."""

    def __init__(self, message: str, code: int = FINDING) -> None:
        super().__init__(message)
        self.code = code


def add_app_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", default=None, metavar="MODULE",
                        help="the module holding the Celery app and its Crux (MODULE or MODULE:attr; "
                             f"default: $CRUX_APP, else {DEFAULT_APP})")


def app_module_name(option: str | None) -> str:
    return option or os.environ.get("CRUX_APP") or DEFAULT_APP


def load_module(option: str | None) -> tuple[str, Any, str | None]:
    """Import ``MODULE`` (of ``MODULE`` or ``MODULE:attr``) like ``celery -A``: from the working
    directory. Returns the spec, the module and the attribute name."""
    spec = app_module_name(option)
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"cannot import the app module {module_name!r} ({exc}). Run from the directory that "
                       "holds it, or pass --app MODULE (or set CRUX_APP) to the module that builds "
                       "Crux(celery_app).", USAGE) from exc
    return spec, module, attr or None


def find_crux(module: Any, attr: str | None) -> Crux | None:
    """The module's ``Crux``: the named attribute (a ``Crux`` or a Celery app with one), else a
    module attribute that is a ``Crux``, else the ``Crux`` of a Celery app attribute."""
    from celery import Celery

    from cruxcelery.crux import Crux

    candidates = [getattr(module, attr, None)] if attr else list(vars(module).values())
    for value in candidates:
        if isinstance(value, Crux):
            return value
    for value in candidates:
        if isinstance(value, Celery):
            runtime = Crux.for_app(value)
            if isinstance(runtime, Crux):
                return runtime
    return None


def find_celery(module: Any, attr: str | None) -> Any:
    """The module's Celery app (the named attribute, ``app``, ``celery``, else any), or ``None``."""
    from celery import Celery

    if attr:
        value = getattr(module, attr, None)
        return value if isinstance(value, Celery) else getattr(value, "app", None)
    for name in ("app", "celery"):
        if isinstance(getattr(module, name, None), Celery):
            return getattr(module, name)
    return next((v for v in vars(module).values() if isinstance(v, Celery)), None)


def load_crux(option: str | None) -> Crux:
    spec, module, attr = load_module(option)
    crux = find_crux(module, attr)
    if crux is None:
        raise CliError(f"the app module {spec!r} builds no Crux: define crux = Crux(celery_app) in it, or pass "
                       "--app MODULE (or set CRUX_APP) to the module that does.", USAGE)
    return crux


def run(handler: Callable[[argparse.Namespace], int], options: argparse.Namespace, command: str) -> int:
    """Run a subcommand; every expected error becomes one message on stderr and an exit code."""
    try:
        return handler(options)
    except CliError as exc:
        return fail(command, str(exc), exc.code)
    except Exception as exc:
        message, code = explain(exc)
        if message is None:
            raise
        return fail(command, message, code)


def fail(command: str, message: str, code: int) -> int:
    print(f"cruxcelery {command}: {message}", file=sys.stderr)
    return code


def explain(exc: BaseException) -> tuple[str | None, int]:
    """A message saying what happened and what to do next, and the exit code (``None``: not ours)."""
    import redis
    from kombu.exceptions import OperationalError

    from cruxcelery.errors import BrokerUnavailable, ConfigurationError, StoreUnavailable
    from cruxcelery.flows.errors import (
        FlowError,
        FlowNotFound,
        FlowNotWaiting,
        InvalidCursor,
        InvalidFlowId,
        SignalRejected,
    )

    if isinstance(exc, FlowNotFound):
        return (f"no flow {exc.flow_id!r} in the store (deleted, expired after CRUX_FLOW_RETENTION_S, or "
                "another CRUX_KEY_PREFIX / Redis). List the flows with: cruxcelery flows list"), FINDING
    if isinstance(exc, SignalRejected):
        lines = [f"signal refused: {_first_line(exc)}"]
        for error in exc.errors:
            where = ".".join(str(part) for part in error.get("loc", ())) or "(payload)"
            lines.append(f"  {where}: {error.get('msg', '')} [{error.get('type', '')}]")
        lines.append("Fix the payload (see the schema with: cruxcelery flows show FLOW_ID) and send it again.")
        return "\n".join(lines), FINDING
    if isinstance(exc, FlowNotWaiting):
        return f"{exc}. Check its status with: cruxcelery flows show FLOW_ID", FINDING
    if isinstance(exc, InvalidCursor | InvalidFlowId):
        return f"{exc}. Copy ids and cursors from the output of: cruxcelery flows list", USAGE
    if isinstance(exc, StoreUnavailable | redis.RedisError):
        return (f"the flow store (Redis) does not answer: {_cause(exc)}. Start Redis or fix CRUX_REDIS_URL "
                "(or the app's broker URL), then run the command again."), FINDING
    if isinstance(exc, BrokerUnavailable | OperationalError):
        return (f"the Celery broker does not answer: {_cause(exc)}. Start it or fix the app's broker_url; "
                "what was stored stays, and the sweeper publishes it once the broker answers."), FINDING
    if isinstance(exc, ConfigurationError):
        return f"{exc}", USAGE
    if isinstance(exc, FlowError):
        return str(exc), FINDING
    return None, FINDING


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return _first_line(cause)
