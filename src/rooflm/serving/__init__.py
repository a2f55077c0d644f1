"""The serving view: a deployment under a traffic (continuous batching, chunked prefill, a KV-cache limit).

``serve_traffic`` prices engine steps with rooflm.sweep (steps.py) and runs either the vectorised steady-state
model (steady.py) or a discrete-event simulation of requests (simulate.py); traffic.py parses lengths and loads.
"""

from rooflm.serving.api import METHODS, serve_traffic
from rooflm.serving.result import ServingPoint, ServingResult
from rooflm.serving.traffic import Lengths, parse_lengths

__all__ = ["METHODS", "Lengths", "ServingPoint", "ServingResult", "parse_lengths", "serve_traffic"]
