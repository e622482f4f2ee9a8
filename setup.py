"""The wheel's packages: everything under ``cruxcelery/``, plus the repository's reference app
shipped as the package's demo app, the same files rather than a copy: ``tasks/`` as
``cruxcelery.examples`` and ``flows/`` as ``cruxcelery.examples.flows`` (``cruxcelery demo`` runs
it outside a checkout). The rest of the configuration is in pyproject.toml; this file only exists
because ``[tool.setuptools]`` cannot add mapped packages to a ``packages.find`` result."""

from setuptools import find_namespace_packages, setup

EXAMPLES = {"cruxcelery.examples": "tasks", "cruxcelery.examples.flows": "flows"}

setup(packages=[*find_namespace_packages(include=["cruxcelery", "cruxcelery.*"]), *EXAMPLES], package_dir=EXAMPLES)
