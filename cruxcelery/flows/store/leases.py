"""Execution leases (one execution per flow at a time) and the wake flag that hands a resume
requested during an execution over to that execution."""

from __future__ import annotations

import secrets

from cruxcelery.flows.codec import as_int
from cruxcelery.flows.store.base import ttl_ms
from cruxcelery.flows.store.recovery import RecoveryOps


def _new_token() -> str:
    return secrets.token_hex(16)


class LeaseOps(RecoveryOps):
    """The lease is ``FlowKeys.lease(id)`` holding a random token with a PX expiry; the wake flag
    is ``FlowKeys.wake(id)`` (expires after ``wake_ttl_s``)."""

    def acquire_lease_or_request_wake(self, flow_id: str, ttl_s: float) -> str | None:
        """Atomically: acquire the lease (returns its token; a pending wake flag is cleared, the new
        holder reads fresh state anyway), or set the wake flag (returns ``None``) while another
        execution holds it, so that holder's ``release_lease`` reports the wake.

        Prefer this to ``acquire_lease`` + ``request_wake``: with two calls the holder may release
        between them and the wake would wait for its TTL.
        """
        token = _new_token()
        keys = [self._keys.lease(flow_id), self._keys.wake(flow_id)]
        self.track_lease(flow_id, ttl_s)  # first: a holder that dies is then always in the index
        acquired = self._scripts.acquire_or_wake(
            keys=keys,
            args=[token, ttl_ms(ttl_s, "ttl_s"), self._wake_ttl_ms],
        )
        return token if as_int(acquired) == 1 else None

    def renew_lease(self, flow_id: str, token: str, ttl_s: float) -> bool:
        """Extend the lease to ``ttl_s`` from now if ``token`` still holds it."""
        renewed = as_int(self._scripts.renew_lease(
            keys=[self._keys.lease(flow_id)], args=[token, ttl_ms(ttl_s, "ttl_s")]
        )) == 1
        if renewed:
            self.track_lease(flow_id, ttl_s)
        return renewed

    def release_lease(self, flow_id: str, token: str) -> bool:
        """Release the lease if ``token`` holds it; return whether a wake was requested.

        Atomically deletes the lease (token match only) and takes (GETDEL) the wake flag, so a
        resume requested during the execution is never lost: on ``True`` the caller must run or
        schedule the flow again. The wake is also taken when the lease already expired and nobody
        holds it; it is left alone when another execution holds the lease (that one takes it).
        """
        woke = self._scripts.release_lease(
            keys=[self._keys.lease(flow_id), self._keys.wake(flow_id)], args=[token]
        )
        self.untrack_lease(flow_id)
        return as_int(woke) == 1
