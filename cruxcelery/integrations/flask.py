"""The documented import path of ``cruxcelery.integrations.web.flask``."""

from cruxcelery.integrations.web.flask import EXTENSION_KEY, CruxCelery, CruxCeleryState, describe_flow, signal_errors

__all__ = ["EXTENSION_KEY", "CruxCelery", "CruxCeleryState", "describe_flow", "signal_errors"]
