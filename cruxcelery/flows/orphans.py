"""Claims a live worker holds for messages it no longer has.

A worker claims every flow task and durable child it reserves (``extension.on_received``) and lets
go of the claim when the execution ends, after a durable child's report. A pool process that dies
in between (after Celery stored the result: Celery then acknowledges the message without a
signal; or while reporting) leaves a claim that no dead-worker sweep ever takes, since its worker
lives on. Each worker's sweeper finds its own such claims: task ids that its main process no longer
holds (reserved, running, or waiting for an ETA) on two sweeps in a row. Their messages are
published again: a durable child whose outcome is stored does not run and resumes the flow waiting
on it; one whose outcome is not stored runs; a flow task finds out itself whether there is work."""

from __future__ import annotations

from celery.worker import state


def held_task_ids() -> set[str]:
    """The tasks this worker's main process holds now."""
    scheduled = getattr(state, "scheduled_requests", ())  # waiting for their ETA (not in Celery's stubs)
    groups = (state.reserved_requests, state.active_requests, scheduled)
    return {str(request.id) for group in groups for request in list(group)}


class OrphanedClaims:
    """Claims of this worker for tasks it does not hold, on two checks in a row."""

    def __init__(self) -> None:
        self._suspects: set[str] = set()

    def due(self, claimed: set[str]) -> set[str]:
        orphans = claimed - held_task_ids()
        due = orphans & self._suspects
        self._suspects = orphans - due
        return due
