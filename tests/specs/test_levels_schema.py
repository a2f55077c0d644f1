"""The [[levels]] table of a hardware file: what loads and what is refused, with the key named."""

from __future__ import annotations

import pytest

from rooflm.errors import InvalidInputError
from rooflm.specs.hardware import hardware_from_text

BASE = """
name = "toy"
display_name = "Toy"
vendor = "x"
kind = "gpu"
peak_flops = { bf16 = 1e14 }
memory_bandwidth = 1e12
memory_capacity = 1e10
kernel_launch_overhead = 0
[efficiency]
memory = 1
kernel_overhead = 0
compute = { default = 1 }
"""

L1 = '[[levels]]\nname = "l1"\nbandwidth = 2e13\ncapacity = 1e7\ntile = { m = 64, n = 64 }\n'
L2 = '[[levels]]\nname = "l2"\nbandwidth = 5e12\ncapacity = 5e7\n'


def test_levels_load_innermost_first() -> None:
    hw = hardware_from_text(BASE + L1 + L2, "toy")
    assert [lv.name for lv in hw.levels] == ["l1", "l2"]
    assert hw.levels[0].tile is not None and (hw.levels[0].tile.m, hw.levels[0].tile.n) == (64, 64)
    assert hw.levels[1].tile is None


def test_a_device_without_levels_has_none() -> None:
    assert hardware_from_text(BASE, "toy").levels == []


@pytest.mark.parametrize(("text", "words"), [
    (L1 + L1, "unique"),
    ('[[levels]]\nname = "dram"\nbandwidth = 5e12\ncapacity = 5e7\n', "outermost"),
    ('[[levels]]\nname = "l2"\nbandwidth = 5e11\ncapacity = 5e7\n', "slower than memory_bandwidth"),
    ('[[levels]]\nname = "l3"\nbandwidth = 5e12\ncapacity = 2e10\n', "not smaller than memory_capacity"),
    ('[[levels]]\nname = "L2!"\nbandwidth = 5e12\ncapacity = 5e7\n', "levels.0.name"),
    ('[[levels]]\nname = "l2"\nbandwidth = 5e12\ncapacity = 0\n', "capacity"),
])
def test_bad_levels_are_refused_naming_the_key(text: str, words: str) -> None:
    with pytest.raises(InvalidInputError, match="levels") as err:
        hardware_from_text(BASE + text, "toy")
    assert words in str(err.value)
