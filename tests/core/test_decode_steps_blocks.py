"""e2e decode steps are summed a block at a time: the sums equal a step-by-step loop, whatever the block."""

import numpy as np
import pytest

from rooflm.core import evaluate
from rooflm.core.inputs import setup


@pytest.mark.parametrize("block", [1, 3, 1 << 18])
def test_blocks_sum_to_the_step_by_step_loop(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(evaluate, "DECODE_BLOCK_ELEMENTS", block * 2)  # 2 points: `block` steps per block
    s = setup("llama-3.1-8b", "h100-sxm", efficiency="calibrated")
    batch, prompt = np.array([1.0, 8.0]), np.array([100.0, 2000.0])
    gen_len = 8
    got = evaluate.decode_steps(s.model, s.quant, s.hardware, s.eff, batch, prompt, gen_len, s.options)
    # Brute force: each of the gen_len − 1 steps on its own, step i at context prompt + i.
    loop = [evaluate.decode(s.model, s.quant, s.hardware, s.eff, batch, prompt + i, s.options) for i in range(1, gen_len)]
    for k, op in enumerate(got):
        assert op.time_s == pytest.approx(sum(step[k].time_s for step in loop), rel=1e-12)
        assert op.kv_bytes == pytest.approx(sum(step[k].kv_bytes for step in loop), rel=1e-12)
        assert op.time_by_bound == pytest.approx(sum(step[k].time_by_bound for step in loop), rel=1e-12)


def test_one_output_token_has_no_decode_step() -> None:
    s = setup("llama-3.1-8b", "h100-sxm")
    got = evaluate.decode_steps(s.model, s.quant, s.hardware, s.eff, np.array([4.0]), np.array([64.0]), 1, s.options)
    assert got and all(float(o.time_s.sum()) == 0.0 for o in got)
