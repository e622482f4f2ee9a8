"""Web framework integrations: ``cruxcelery.integrations.web.flask`` (``CruxCelery``) and the Django
app ``cruxcelery.integrations.web.django``. Importing this package imports no web framework."""
