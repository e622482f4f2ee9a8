"""The Flask example: ``create_app()`` in ``app.py``, the worker entry point in ``worker.py``."""
