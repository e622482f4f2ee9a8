"""The path the examples used for ``cruxcelery.integrations.web.common``: the same module."""

import sys
from typing import TYPE_CHECKING

__all__ = ["celery_conf_from", "describe_flow", "settings_from", "signal_errors", "validation_errors"]

if TYPE_CHECKING:
    from cruxcelery.integrations.web.common import (
        celery_conf_from,
        describe_flow,
        settings_from,
        signal_errors,
        validation_errors,
    )
else:
    import cruxcelery.integrations.web.common as moved

    sys.modules[__name__] = moved
