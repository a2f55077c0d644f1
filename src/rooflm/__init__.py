"""rooflm: where LLM inference time goes, operator by operator, on a roofline."""

from rooflm.analyses.analyze import analyze
from rooflm.analyses.critical import CriticalBatch, critical_batch
from rooflm.analyses.quant_comparison import QuantComparison, compare_quant
from rooflm.analyses.regimes import Regime, Regimes, regimes
from rooflm.analyses.report import Report
from rooflm.analyses.sweep import SweepResult, sweep
from rooflm.errors import DoesNotFitError, InvalidInputError, RooflmError, UnknownNameError, UnsupportedModelError
from rooflm.explain.prose import Explanation, explain
from rooflm.serving import ServingPoint, ServingResult, serve_traffic
from rooflm.serving.plan import plan
from rooflm.serving.plan_result import PlanPoint, PlanResult
from rooflm.specs.hardware import HardwareSpec, load_hardware
from rooflm.specs.hf_config import load_model
from rooflm.specs.model import ModelSpec
from rooflm.specs.quant import QuantScheme, load_scheme

__all__ = [
    "CriticalBatch",
    "DoesNotFitError",
    "Explanation",
    "HardwareSpec",
    "InvalidInputError",
    "ModelSpec",
    "PlanPoint",
    "PlanResult",
    "QuantComparison",
    "QuantScheme",
    "Regime",
    "Regimes",
    "Report",
    "RooflmError",
    "ServingPoint",
    "ServingResult",
    "SweepResult",
    "UnknownNameError",
    "UnsupportedModelError",
    "analyze",
    "compare_quant",
    "critical_batch",
    "explain",
    "load_hardware",
    "load_model",
    "load_scheme",
    "plan",
    "regimes",
    "serve_traffic",
    "sweep",
]
__version__ = "0.1.0"
