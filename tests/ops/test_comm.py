import pytest

from rooflm.ops.comm import all_reduce, all_to_all, point_to_point


def test_ring_all_reduce_sends_twice_the_message_less_one_share() -> None:
    # 8 devices, 1 MB: each sends 2 * 1e6 * 7/8 = 1.75 MB in 2 * 7 = 14 steps.
    c = all_reduce(1e6, 8)
    assert c.comm_bytes == pytest.approx(1.75e6)
    assert c.comm_steps == 14


def test_tree_all_reduce_has_logarithmic_steps() -> None:
    assert all_reduce(1e6, 8, "tree").comm_steps == 6  # 2 * log2(8)


def test_all_to_all_keeps_the_local_share() -> None:
    c = all_to_all(8e6, 8)
    assert c.comm_bytes == pytest.approx(7e6) and c.comm_steps == 7


def test_one_device_communicates_nothing() -> None:
    assert all_reduce(1e6, 1).comm_bytes == 0 and all_to_all(1e6, 1).comm_steps == 0
    assert point_to_point(5.0).comm_bytes == 5.0
