"""The documented import path of ``cruxcelery.integrations.web.flask``: the same module."""

import sys
from typing import TYPE_CHECKING

__all__ = ["CruxCelery", "CruxCeleryState", "EXTENSION_KEY"]

if TYPE_CHECKING:
    from cruxcelery.integrations.web.flask import (
        EXTENSION_KEY,
        CruxCelery,
        CruxCeleryState,
    )
else:
    import cruxcelery.integrations.web.flask as moved

    sys.modules[__name__] = moved
