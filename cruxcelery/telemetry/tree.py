"""Render the records of runs as an indented text tree (the demo and the CLI use it)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any


def render(records: Iterable[dict[str, Any]], *, show_detail: bool = True) -> str:
    """One block per run: its spans nested by parent, with status, duration and boundary events."""
    records = list(records)
    starts = {r["spanId"]: r for r in records if r["type"] in ("span:start", "span")}
    ends = {r["spanId"]: r for r in records if r["type"] in ("span:end", "span")}
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["type"] == "span:event":
            events[r["spanId"]].append(r)
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for span in starts.values():
        parent = span.get("parentSpanId")
        children[parent if parent in starts else None].append(span)
    for group in children.values():
        group.sort(key=lambda s: s["startedAt"])
    runs = {r["runId"]: r for r in records if r["type"] == "run:start"}
    run_ends = {r["runId"]: r for r in records if r["type"] == "run:end"}
    edges = {r["toRunId"]: r for r in records if r["type"] == "edge"}
    lines: list[str] = []
    for root in children[None]:
        run = runs.get(root["runId"])
        if run is not None and run.get("name") == root["name"] and not root.get("parentSpanId"):
            end = run_ends.get(root["runId"], {})
            lines.append(f"run {run['name']!r} [{end.get('status', 'running')}] {root['runId']}")
            edge = edges.get(root["runId"])
            if edge is not None:
                source = starts.get(edge["fromSpanId"], {}).get("name", edge["fromSpanId"])
                lines.append(f"  ({edge['kind']} by {source!r} in {edge['fromRunId']})")
        _walk(root, children, ends, events, lines, 1, show_detail)
    return "\n".join(lines)


def _walk(span: dict[str, Any], children: dict[str | None, list[dict[str, Any]]],
          ends: dict[str, dict[str, Any]], events: dict[str, list[dict[str, Any]]],
          lines: list[str], depth: int, show_detail: bool) -> None:
    end = ends.get(span["spanId"], {})
    detail = span.get("attributes", {}).get("presentation", {}).get("display") == "detail"
    if show_detail or not detail:
        status = end.get("status", "running")
        duration = f" {end['durationMs']:.1f}ms" if "durationMs" in end else ""
        marker = " (detail)" if detail else ""
        lines.append(f"{'  ' * depth}- {span['name']} <{span['primitive']}> [{status}]{duration}{marker}"
                     f"{_agent_detail(span, end)}")
        for event in events.get(span["spanId"], []):
            if event["name"].startswith("runtime.celery.boundary.") or event["name"] == "exception":
                lines.append(f"{'  ' * (depth + 1)}* {event['name']}")
        depth += 1
    for child in children.get(span["spanId"], []):
        _walk(child, children, ends, events, lines, depth, show_detail)


def _agent_detail(span: dict[str, Any], end: dict[str, Any]) -> str:
    """`` · model · 12→7 tokens`` for a generation, `` · call c1 (not executed)`` for a tool."""
    parts: list[str] = []
    attributes = span.get("attributes") or {}
    if span.get("model"):
        parts.append(str(span["model"]))
    metrics = end.get("metrics") or {}
    if "inputTokens" in metrics or "outputTokens" in metrics:
        parts.append(f"{metrics.get('inputTokens', '?')}→{metrics.get('outputTokens', '?')} tokens")
    if span.get("primitive") == "tool.call" and attributes.get("toolCallId"):
        parts.append(f"call {attributes['toolCallId']}")
    if attributes.get("executed") is False:
        parts.append("not executed")
    return "".join(f" · {part}" for part in parts)
