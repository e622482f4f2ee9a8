"""The documented import path of ``cruxcelery.integrations.web.django``: the same module, and
``"cruxcelery.integrations.django"`` in ``INSTALLED_APPS`` finds the same app config."""

import sys
from typing import TYPE_CHECKING

__all__ = ["NAMESPACE", "autodiscover_flows", "describe_flow", "get_celery_app", "get_crux", "namespace", "reset",
           "setup", "signal_errors"]

if TYPE_CHECKING:
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
else:
    import cruxcelery.integrations.web.django as moved
    import cruxcelery.integrations.web.django.apps as moved_apps

    sys.modules[__name__] = moved
    sys.modules[f"{__name__}.apps"] = moved_apps
