"""The app config under the documented path ``cruxcelery.integrations.django``."""

from __future__ import annotations

from cruxcelery.integrations.web.django import apps


class CruxCeleryConfig(apps.CruxCeleryConfig):
    name = "cruxcelery.integrations.django"
