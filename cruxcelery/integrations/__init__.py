"""Web framework integrations: ``cruxcelery.integrations.flask`` (``CruxCelery``) and the Django
app ``cruxcelery.integrations.django``. Importing this package imports no web framework."""
