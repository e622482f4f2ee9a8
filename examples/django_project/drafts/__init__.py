"""The example's Django app: the writer flow (``flows.py``, autodiscovered) and its endpoints."""
