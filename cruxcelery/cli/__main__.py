"""``python -m cruxcelery.cli``."""

import sys

from cruxcelery.cli.main import main

sys.exit(main())
