"""Durable flows on Redis: snapshots, signals, leases, timers and their key layout."""
