"""Agent work recorded as what it is: tools (``tool.call``), generations (``generation.call`` /
``generation.stream``) and immediate compositions (``parallel``), in Crux records and the
OpenTelemetry GenAI conventions. Public names are re-exported from ``cruxcelery``; importing this
package does nothing."""
