"""Crux telemetry: record models, spans, previews, error evidence and exporters.

Knows nothing of Celery tasks or flows.
"""
