"""Crux devtools: ``cruxcelery dev``, the local server that ingests Crux v5 records and shows runs.

One job per module:

- ``batch``: splits an ingest body into records, keeping each record's exact JSON text
- ``validation``: base identity checks of one record (what ingest may reject)
- ``database``: the SQLite file (WAL), its schema and its connections
- ``ingest``: stores a batch (one transaction, else record by record) with a disposition per record
- ``projection``: the run list, search, flow and link tables kept in step with stored records, per batch
- ``fastjson``: JSON of the hot paths (``orjson`` when installed)
- ``graph``: builds one run's spans, events, artifacts and segments from its raw records
- ``reconcile``: the presentation-time rules for ends that never arrived (raw records untouched)
- ``store``: ingest and reconciled reads (kept until a record arrives or a recheck time comes) and the cached
  run status of the run list
- ``detail`` / ``queries`` / ``models``: the read side of the JSON API and its pydantic shapes
- ``live``: the 1 s reconciliation pass and the publish/subscribe behind server-sent events
- ``flowstore``: the read-only look at a flow's snapshot in Redis
- ``auth``: the bearer token required beyond loopback
- ``api`` / ``server``: the HTTP routes (ingest, JSON API, web UI) and how ``cruxcelery dev`` serves them (uvicorn)

Devtools reads the record model of ``cruxcelery.telemetry`` and nothing else of the runtime.
"""

from __future__ import annotations

from cruxcelery.devtools.api import DevtoolsConfig, create_app

__all__ = ["DevtoolsConfig", "create_app"]
