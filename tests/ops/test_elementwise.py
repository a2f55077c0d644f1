from rooflm.ops.elementwise import embedding_lookup, residual_add, rmsnorm, swiglu


def test_rmsnorm_reads_and_writes_once_plus_its_weight() -> None:
    # 10 rows x 64: 640 elements in and out at 2 B = 2560 B; weight 64 * 2 = 128 B.
    c = rmsnorm(10, 64, io_bytes=2)
    assert c.activation_bytes == 2560
    assert c.weight_bytes == 128
    assert c.flops == 4 * 640


def test_residual_add_reads_two_writes_one() -> None:
    assert residual_add(2, 8, io_bytes=2).activation_bytes == 3 * 16 * 2


def test_swiglu_reads_gate_and_up_writes_one() -> None:
    # 2 tokens, I = 8: read 2*16, write 2*8 elements, at 2 B.
    assert swiglu(2, 8, io_bytes=2).activation_bytes == (32 + 16) * 2


def test_embedding_reads_only_the_rows_used_at_most_the_table() -> None:
    assert embedding_lookup(3, 8, 100, table_bytes=2, io_bytes=2).weight_bytes == 3 * 8 * 2
    assert embedding_lookup(1000, 8, 100, table_bytes=2, io_bytes=2).weight_bytes == 100 * 8 * 2
