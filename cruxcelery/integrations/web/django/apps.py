"""The app config of ``cruxcelery.integrations.web.django``: builds the ``Crux`` and autodiscovers
``flows`` modules when Django is ready."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]


class CruxCeleryConfig(AppConfig):  # type: ignore[misc]
    name = "cruxcelery.integrations.web.django"
    label = "cruxcelery"
    verbose_name = "cruxcelery"

    def ready(self) -> None:
        # Django's hook: the app registry is ready only now (importing the package earlier is too soon)
        from cruxcelery.integrations.web.django import autodiscover_flows, setup

        setup()
        autodiscover_flows()
