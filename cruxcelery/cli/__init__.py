"""``cruxcelery``: the command line (``main``), one module per subcommand."""

from cruxcelery.cli.main import main

__all__ = ["main"]
