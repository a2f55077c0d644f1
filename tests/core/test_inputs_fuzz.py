"""Fuzz every deployment keyword of analyze: the answer is a Report whose JSON is strict (no NaN, no inf) or a
RooflmError, never another exception."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rooflm

EDGE_FLOATS = [math.nan, -math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.0, -0.0, 1.0, 0.5, 1e-300]
EDGE_INTS = [0, -1, 1, 2, 8, 10**7, 10**8 + 1, 2**63, 10**400, -(10**400)]


def _cased(words: list[str]) -> st.SearchStrategy[str]:
    """The valid names in random case and padding, or random text."""
    valid = st.sampled_from(words).flatmap(lambda w: st.sampled_from([w, w.upper(), w.title(), f" {w} "]))
    return st.integers(0, 3).flatmap(lambda pick: st.text(max_size=12) if pick == 0 else valid)


floats = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(allow_nan=True, allow_infinity=True))
ints = st.one_of(st.sampled_from(EDGE_INTS), st.integers(min_value=-10, max_value=64), st.integers())
# Any keyword may get any kind of value (a float where an int belongs, text where a number belongs).
anything = st.one_of(floats, ints, st.text(max_size=12), st.booleans(), st.none())


def _keyword(sane: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a sane value, so that many examples get through to a report, else anything at all."""
    return st.integers(0, 7).flatmap(lambda pick: anything if pick == 0 else sane)  # (one_of would flatten)


def _fraction() -> st.SearchStrategy[float]:
    return st.floats(min_value=0.01, max_value=1.0)


KEYWORDS: dict[str, st.SearchStrategy[Any]] = {
    "quant": _keyword(_cased(["bf16", "fp8", "w4a16", "int8", "w8a16"])),
    "kv_dtype": _keyword(st.one_of(st.none(), _cased(["bf16", "fp8", "int4"]))),
    "efficiency": _keyword(_cased(["ideal", "calibrated"])),
    "eta_memory": _keyword(st.one_of(st.none(), _fraction())),
    "eta_compute": _keyword(st.one_of(st.none(), _fraction())),
    "kernel_overhead_s": _keyword(st.one_of(st.none(), st.floats(0, 1e-3))),
    "tp": _keyword(st.sampled_from([1, 2, 4, 8])),
    "ep": _keyword(st.just(1)),
    "pp": _keyword(st.sampled_from([1, 2, 4])),
    "dp": _keyword(st.sampled_from([1, 2])),
    "comm_algorithm": _keyword(_cased(["ring", "tree"])),
    "hot_expert_factor": _keyword(st.floats(1, 100)),
    "hot_expert_fraction": _keyword(st.floats(0.01, 0.99)),
    "mla_decode": _keyword(_cased(["absorbed", "naive"])),
    "dequant_ops": _keyword(st.one_of(st.none(), st.floats(0, 10))),
    "kv_dequant_ops": _keyword(st.one_of(st.none(), st.floats(0, 10))),
    "act_quant": _keyword(st.one_of(st.none(), st.booleans())),
    "batch": _keyword(st.integers(1, 4096)),
    "prompt_len": _keyword(st.integers(1, 131_072)),
    "context": _keyword(st.integers(1, 131_072)),
    "gen_len": _keyword(st.integers(1, 4096)),
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional=KEYWORDS))
def test_any_deployment_gives_a_strict_json_report_or_a_rooflm_error(kwargs: dict[str, Any]) -> None:
    try:
        report = rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="decode", **kwargs)
    except rooflm.RooflmError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    json.dumps(report.to_json_dict(), allow_nan=False)
