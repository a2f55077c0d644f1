"""Matrix multiplications against a weight matrix (projections, MLP, lm_head)."""

from __future__ import annotations

from rooflm.ops.cost import Cost, Num


def linear(m: Num, k: int, n: int, *, weight_bytes_per_el: float, in_bytes: float, out_bytes: float,
           bias: bool = False, bias_bytes: float = 2.0) -> Cost:
    """Y[m, n] = X[m, k] · W[k, n] (+ b).

    FLOPs: 2·m·k·n (a multiply-add is 2 FLOPs), plus m·n for the bias add.
    Bytes: the weight once (the ideal: each operand crosses main memory once), X read, Y written.
    """
    return Cost(
        flops=2.0 * m * k * n + (m * n if bias else 0.0),
        weight_bytes=k * n * weight_bytes_per_el + (n * bias_bytes if bias else 0.0),
        activation_bytes=m * k * in_bytes + m * n * out_bytes,
    )
