import numpy as np
import pytest

from rooflm.ops.comm import all_gather, all_reduce, all_to_all, auto_all_reduce_time, point_to_point
from rooflm.specs.hardware import AllReduceAlgorithm, Link


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


def test_ring_all_gather_receives_the_other_shards() -> None:
    # 8 devices gather 8 MB (the logits of a TP=8 lm_head): each holds 1 MB and sends it on in a ring of 8 - 1 = 7
    # steps, so every device sends (and receives) 7/8 of the total, 7 MB.
    c = all_gather(8e6, 8)
    assert c.comm_bytes == pytest.approx(7e6) and c.comm_steps == 7 and c.collective == "all_gather"
    assert all_gather(8e6, 1).comm_bytes == 0


def test_one_device_communicates_nothing() -> None:
    assert all_reduce(1e6, 1).comm_bytes == 0 and all_to_all(1e6, 1).comm_steps == 0
    assert point_to_point(5.0).comm_bytes == 5.0


def test_auto_without_measured_algorithms_is_the_faster_nccl_formula() -> None:
    # A link with no measured all-reduce (MI300X's today): 8 devices, 1 MiB = 1,048,576 B at 64 GB/s, 2 us per hop.
    # Sent per device 2 * 1,048,576 * 7/8 = 1,835,008 B -> 28.672 us of bandwidth; the tree's 2 * log2(8) = 6 hops
    # (12 us) beat the ring's 14 (28 us): 40.672 us. A 16 MiB message, past an algorithm's max_bytes, falls back too.
    link = Link(name="test", bandwidth=64e9, latency=2e-6, devices_per_domain=8)
    assert auto_all_reduce_time(np.asarray(1_048_576.0), 8, link) == pytest.approx(40.672e-6, rel=1e-12)
    one_shot = AllReduceAlgorithm(name="one-shot", latency=5e-6, bus_efficiency=0.5, max_bytes=4e6)
    measured = Link(name="test", bandwidth=64e9, latency=2e-6, devices_per_domain=8, all_reduce=[one_shot])
    # 1 MiB: one-shot 5 us + 1,835,008 / (0.5 * 64e9) = 5 + 57.344 = 62.344 us, slower than NCCL, but engines only pick
    # among measured algorithms when one applies: it does.
    assert auto_all_reduce_time(np.asarray(1_048_576.0), 8, measured) == pytest.approx(62.344e-6, rel=1e-12)
    big = 16 * 1_048_576.0  # sent 29,360,128 B -> 458.752 us + tree 12 us
    assert auto_all_reduce_time(np.asarray(big), 8, measured) == pytest.approx(470.752e-6, rel=1e-12)
