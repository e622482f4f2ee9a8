"""The documented import path of ``cruxcelery.integrations.web.django``: put
``"cruxcelery.integrations.django"`` (or the new path) in ``INSTALLED_APPS``."""

from cruxcelery.integrations.web.django import (
    NAMESPACE,
    autodiscover_flows,
    describe_flow,
    get_celery_app,
    get_crux,
    namespace,
    reset,
    setup,
    signal_errors,
)

__all__ = ["NAMESPACE", "autodiscover_flows", "describe_flow", "get_celery_app", "get_crux", "namespace",
           "reset", "setup", "signal_errors"]
