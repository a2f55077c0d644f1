"""ops.cost.Cost: what an operator instance costs, and several instances of it."""

from __future__ import annotations

from rooflm.ops.cost import Cost, Op, any_nonzero


def test_instances_multiply_every_amount_and_keep_what_a_collective_is() -> None:
    # Two instances (e.g. two experts hit): twice the FLOPs, bytes, conversions and the collective's message; the
    # same collective, algorithm and latency-bound steps per instance.
    c = Cost(flops=1, weight_bytes=2, activation_bytes=3, kv_bytes=4, comm_bytes=5, comm_steps=6, vector_ops=7,
             collective="all_to_all", message_bytes=8, algorithm="ring")
    assert c.scaled(2) == Cost(flops=2, weight_bytes=4, activation_bytes=6, kv_bytes=8, comm_bytes=10, comm_steps=6,
                               vector_ops=14, collective="all_to_all", message_bytes=16, algorithm="ring")


def test_any_nonzero_is_numpys_any() -> None:
    import numpy as np

    for x in (0.0, 3.0, float("nan"), np.zeros(3), np.array([0.0, 0.0, 2.0]), np.array([np.nan]), np.array(0.0)):
        assert any_nonzero(x) == bool(np.any(x)), x


def test_gemm_rows_count_every_instance() -> None:
    # 3 experts hit, 4 tokens each: the batched GEMM's input has 12 rows.
    op = Op("experts.gate_up_proj", "gemm", "weight_gemm", 1, Cost(), "bf16", gemm_m=4.0, instances=3.0)
    assert op.gemm_rows == 12.0

