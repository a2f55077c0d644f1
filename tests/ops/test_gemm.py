from rooflm.ops.gemm import linear


def test_linear_counts_multiply_adds_as_two_flops_and_each_operand_once() -> None:
    # [3, 5] x [5, 7] in bf16: 2*3*5*7 = 210 FLOPs; weights 5*7*2 = 70 B;
    # input 3*5*2 = 30 B, output 3*7*2 = 42 B.
    c = linear(3, 5, 7, weight_bytes_per_el=2, in_bytes=2, out_bytes=2)
    assert c.flops == 210
    assert c.weight_bytes == 70
    assert c.activation_bytes == 72
    assert c.kv_bytes == 0


def test_linear_bias_adds_one_flop_per_output_and_its_bytes() -> None:
    # bias: 3*7 = 21 adds; 7 bias values * 2 B = 14 B more weight.
    c = linear(3, 5, 7, weight_bytes_per_el=2, in_bytes=2, out_bytes=2, bias=True)
    assert c.flops == 210 + 21
    assert c.weight_bytes == 70 + 14


def test_int4_weights_with_group_scales_cost_their_bits() -> None:
    # 4.125 bits per weight (4 + 16/128) = 0.515625 B; 128 x 256 weights.
    c = linear(1, 128, 256, weight_bytes_per_el=0.515625, in_bytes=2, out_bytes=2)
    assert c.weight_bytes == 128 * 256 * 0.515625
