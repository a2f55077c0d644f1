"""The `rooflm` command and its renderers: parse flags, call the API, print a table, JSON or CSV. No physics here.

``main`` holds the app and the analysis commands; each other command has its module (``fit``, ``measure``,
``plan``, ``plot``, ``regimes``, ``serving``), ``options`` the flags they share, ``output`` what they all print
through, ``render`` and ``render_hardware`` the rich tables.
"""

from rooflm.cli.main import app

__all__ = ["app"]
