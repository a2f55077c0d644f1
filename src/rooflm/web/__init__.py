"""The local web page and JSON API (`rooflm serve`; needs the ``web`` extra: FastAPI, uvicorn, plotly)."""

from rooflm.web.app import create_app

__all__ = ["create_app"]
