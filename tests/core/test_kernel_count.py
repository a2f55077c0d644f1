"""evaluate.kernel_count: the kernels a step launches, by the launch rule (no hardware, no 1 s-per-kernel analysis)."""

import json

import numpy as np
import pytest

from rooflm.core.evaluate import kernel_count
from rooflm.measure.calibrate import step_inventory
from rooflm.measure.configs import tiny_config
from rooflm.ops.cost import Cost, Op


def test_counts_every_instance_of_every_kernel() -> None:
    # 32 layers × 2 kernels + 32 layers × 1 kernel = 96.
    ops = [Op("a", "gemm", "weight_gemm", 32, Cost(flops=1.0), "bf16", kernels=2),
           Op("b", "norm", "other", 32, Cost(activation_bytes=1.0), "bf16")]
    assert kernel_count(ops) == 96


def test_an_op_without_work_at_a_point_launches_nothing_there() -> None:
    # Two points: the op has work at the second only, so it launches 4 kernels in all, not 8.
    ops = [Op("past", "attention", "attention", 4, Cost(flops=np.array([0.0, 5.0])), "bf16")]
    assert kernel_count(ops) == 4


@pytest.mark.parametrize("layers", [1, 2])
def test_a_tiny_decoder_step_grows_by_twelve_kernels_a_layer(layers: int) -> None:
    # The tiny decoder at batch 1 (TP 1, bf16, no MoE): embedding, final norm and lm_head (3), plus per layer
    # 2 norms, the fused qkv and the o projections, rope, the KV-cache write, attention, gate_up and down
    # projections, SwiGLU and 2 residual adds (12): 3 + 12·layers kernels — 15 and 27.
    kernels, _ = step_inventory(json.dumps(tiny_config(layers), sort_keys=True))
    assert kernels == 3 + 12 * layers
