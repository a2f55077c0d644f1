from rooflm.ops.elementwise import embedding_lookup, residual_add, rmsnorm, rope, swiglu


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


def test_rope_rotates_each_head_and_reads_cos_sin_per_token() -> None:
    # 3 tokens, 4 heads, head_dim 16 with the first 8 dims rotated (partial rotary): 3 * 4 * 8 = 96 rotated
    # elements at 3 FLOPs each (x·cos + rotate(x)·sin) = 288 FLOPs; read and write them (2 * 96 * 2 B = 384 B)
    # and read cos/sin for each token's 8 rotated dims (3 * 8 * 2 B = 48 B): 432 B.
    c = rope(3, 4, 16, 8, io_bytes=2)
    assert c.flops == 288
    assert c.activation_bytes == 432


def test_residual_add_and_swiglu_flops() -> None:
    # One add per element: 2 tokens x 8 = 16 FLOPs. SwiGLU, 5 per output element: 2 x 8 x 5 = 80.
    assert residual_add(2, 8, io_bytes=2).flops == 16
    assert swiglu(2, 8, io_bytes=2).flops == 80


def test_embedding_writes_one_hidden_vector_per_token() -> None:
    # 3 tokens of hidden 8 at 2 B: 48 B written, whatever the table's dtype (1 B per element here).
    assert embedding_lookup(3, 8, 100, table_bytes=1, io_bytes=2).activation_bytes == 48
