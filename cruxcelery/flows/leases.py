"""Execution leases (one execution per flow at a time) and the wake flag that hands a resume
requested during an execution over to that execution."""

from __future__ import annotations

import secrets

from cruxcelery.flows.base import StoreBase, ttl_ms
from cruxcelery.flows.codec import as_int, opt_text


def _new_token() -> str:
    return secrets.token_hex(16)


class LeaseOps(StoreBase):
    """The lease is ``FlowKeys.lease(id)`` holding a random token with a PX expiry; the wake flag
    is ``FlowKeys.wake(id)`` (expires after ``wake_ttl_s``)."""

    def acquire_lease(self, flow_id: str, ttl_s: float) -> str | None:
        """The lease's token if acquired (SET NX PX), else ``None``."""
        token = _new_token()
        ok = self._redis.set(self._keys.lease(flow_id), token, nx=True, px=ttl_ms(ttl_s, "ttl_s"))
        return token if ok else None

    def acquire_lease_or_request_wake(self, flow_id: str, ttl_s: float) -> str | None:
        """Atomically: acquire the lease (returns its token; a pending wake flag is cleared, the new
        holder reads fresh state anyway), or set the wake flag (returns ``None``) while another
        execution holds it, so that holder's ``release_lease`` reports the wake.

        Prefer this to ``acquire_lease`` + ``request_wake``: with two calls the holder may release
        between them and the wake would wait for its TTL.
        """
        token = _new_token()
        acquired = self._scripts.acquire_or_wake(
            keys=[self._keys.lease(flow_id), self._keys.wake(flow_id)],
            args=[token, ttl_ms(ttl_s, "ttl_s"), self._wake_ttl_ms],
        )
        return token if as_int(acquired) == 1 else None

    def renew_lease(self, flow_id: str, token: str, ttl_s: float) -> bool:
        """Extend the lease to ``ttl_s`` from now if ``token`` still holds it."""
        renewed = self._scripts.renew_lease(
            keys=[self._keys.lease(flow_id)], args=[token, ttl_ms(ttl_s, "ttl_s")]
        )
        return as_int(renewed) == 1

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
        return as_int(woke) == 1

    def lease_holder(self, flow_id: str) -> str | None:
        """The token currently holding the lease, if any (for diagnostics)."""
        return opt_text(self._redis.get(self._keys.lease(flow_id)))

    def request_wake(self, flow_id: str) -> None:
        """Set the wake flag (expires after ``wake_ttl_s``)."""
        self._redis.set(self._keys.wake(flow_id), "1", px=self._wake_ttl_ms)

    def take_wake(self, flow_id: str) -> bool:
        """Clear the wake flag; return whether it was set."""
        return self._redis.getdel(self._keys.wake(flow_id)) is not None
