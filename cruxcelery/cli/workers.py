"""``cruxcelery doctor``'s worker check: every live worker that consumes the queue of a flow's
task registered that task (else it rejects the flow's messages as unregistered)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cruxcelery.cli.common import Finding

if TYPE_CHECKING:
    from cruxcelery.crux import Crux

__all__ = ["check_workers", "flow_tasks"]


def _queue_of(app: Any, task_name: str) -> str:
    try:
        queue = app.amqp.router.route({}, task_name).get("queue")
    except Exception:
        queue = None
    name = getattr(queue, "name", queue)
    return name if isinstance(name, str) and name else str(app.conf.task_default_queue or "celery")


def flow_tasks(crux: Crux) -> dict[str, str]:
    """The task names flows need on their workers, and the queue each is routed to."""
    from cruxcelery.flows.timers import WAKE_TASK

    names = [handle.task.name for handle in crux.flows.handles.values()] + [WAKE_TASK]
    return {name: _queue_of(crux.app, name) for name in names if name}


def check_workers(crux: Crux, timeout_s: float) -> list[Finding]:
    needed = flow_tasks(crux)
    try:
        inspect = crux.app.control.inspect(timeout=timeout_s)
        registered: dict[str, list[str]] | None = inspect.registered()
        queues: Any = inspect.active_queues() if registered else None
    except Exception as exc:
        return [Finding("warn", "workers", f"cannot ask the workers ({type(exc).__name__}: {exc})")]
    if not registered:
        return [Finding("warn", "workers", f"no worker answered within {timeout_s:g} s: start one with "
                                           "celery -A MODULE worker (or raise --timeout)")]
    findings: list[Finding] = []
    served: set[str] = set()
    for worker, tasks in sorted(registered.items()):
        names = {str(task).split(" ", 1)[0] for task in tasks or []}
        consumed = None if not queues or worker not in queues else {str(q.get("name")) for q in queues[worker]}
        served |= consumed or set()
        missing = sorted(name for name, queue in needed.items()
                         if name not in names and (consumed is None or queue in consumed))
        if missing:
            findings.append(Finding("fail", "workers", f"{worker} consumes the queue of {', '.join(missing)} but did "
                                    "not register it: restart it with celery -A MODULE worker, where MODULE "
                                    "imports every flow (or route those tasks to other queues)"))
    orphans = sorted({queue for queue in needed.values()} - served) if queues else []
    if orphans:
        findings.append(Finding("warn", "workers", f"no live worker consumes {', '.join(orphans)}: flows routed "
                                                   "there never run; start a worker with -Q " + ",".join(orphans)))
    if not [f for f in findings if f.status == "fail"]:
        findings.append(Finding("ok", "workers", f"{len(registered)} worker(s) answered; each registered the "
                                                 f"{len(needed)} flow task(s) of the queues it consumes"))
    return findings
