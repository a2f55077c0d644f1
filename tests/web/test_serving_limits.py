"""web/serving_limits.py: the scheduler-step bound really bounds rooflm.serving.simulate's loop."""

from __future__ import annotations

from typing import Any

import pytest

import rooflm
from rooflm.serving.steps import StepModel
from rooflm.serving.traffic import parse_lengths
from rooflm.specs.hf_config import catalog_model
from rooflm.web.serving_limits import simulated_steps


@pytest.mark.parametrize("traffic", [
    {"concurrency": [4], "prompt_len": 1000, "gen_len": 3, "max_running": 2, "max_tokens_per_step": 8},
    {"concurrency": [16], "prompt_len": "uniform:1:3000", "gen_len": "uniform:1:40", "max_running": 8,
     "max_tokens_per_step": 64},
    {"request_rate": [50.0], "prompt_len": "lognormal:500:400", "gen_len": 20, "max_running": 4,
     "max_tokens_per_step": 100},
    {"request_rate": [0.5], "prompt_len": 300, "gen_len": 1, "max_running": 1, "max_tokens_per_step": 1},
])
def test_the_step_bound_is_never_passed(traffic: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Every non-idle iteration of the loop prices exactly one thing: a run of decode steps (decode_time) or one
    # mixed step (step_time_point); idle ones (Poisson only) jump to an arrival, at most one per request.
    calls = {"n": 0}

    def counting(name: str) -> None:
        original = getattr(StepModel, name)

        def counted(self: StepModel, *args: Any) -> Any:
            calls["n"] += 1
            return original(self, *args)

        monkeypatch.setattr(StepModel, name, counted)

    counting("decode_time")
    counting("step_time_point")
    # 40 requests: the bound and the loop's count both grow in proportion to the requests (measured at 120 and 40:
    # the same count/bound ratio for each traffic, 0.993 for traffic3), so fewer take a third of the time (traffic3's
    # one prompt token per step: 12,000 steps instead of 36,000) and test the bound as closely.
    requests = 40
    rooflm.serve_traffic("llama-3.1-8b", "h100-sxm", requests=requests, **traffic)
    closed = "concurrency" in traffic
    chunk = traffic["max_tokens_per_step"] - traffic["max_running"] + 1
    bound = simulated_steps(requests, parse_lengths(traffic["prompt_len"], "prompt_len"),
                            catalog_model("llama-3.1-8b"), closed, chunk)
    idle = 0 if closed else requests
    assert calls["n"] + idle <= bound
    if isinstance(traffic["prompt_len"], int):
        # … and is not vacuous: a step carries at most max_tokens_per_step prompt tokens, so the prefills alone
        # take prefilled × prompt / max_tokens_per_step steps; a closed loop's first request per user starts past
        # its prefill (traffic0: 36 × 1000 / 8 = 4,500 against a bound of 40 × (2 + 1000 / 7) ≈ 5,794).
        prefilled = requests - traffic.get("concurrency", [0])[0]
        assert calls["n"] >= prefilled * traffic["prompt_len"] / traffic["max_tokens_per_step"]
