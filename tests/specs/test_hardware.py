from pathlib import Path

import pytest

import rooflm
import rooflm.specs.figures
from rooflm.specs.hardware import hardware_names, load_hardware

REQUIRED = ["a100-sxm", "h100-sxm", "h100-pcie", "h200", "b200", "l40s", "l4", "mi300x", "mi325x", "tpu-v5e",
            "tpu-v5p", "tpu-v6e", "xeon-8480", "epyc-9654", "h20", "h800", "a800", "l20", "h100-nvl", "b300", "gb200",
            "gb300", "mi355x", "rtx-4090", "rtx-5090", "rtx-pro-6000", "gaudi3", "ascend-910c", "tpu-v7"]


def test_catalog_has_the_required_devices() -> None:
    assert set(REQUIRED) <= set(hardware_names())


def _figures(hw: rooflm.HardwareSpec) -> list[rooflm.specs.figures.Figure]:
    """Every sourced figure of a device: datasheet, memory levels, links and their all-reduce fits, engine costs and
    calibrated fractions."""
    figures = [*hw.peak_flops.values(), hw.memory_bandwidth, hw.memory_capacity, *hw.caches.values(),
               hw.kernel_launch_overhead, hw.efficiency.memory, hw.efficiency.kernel_overhead,
               *hw.efficiency.compute.values(), *hw.efficiency.memory_by_kind.values(),
               *hw.efficiency.kernel_overhead_by_kind.values()]
    for level in hw.levels:
        figures += [level.bandwidth, level.capacity]
    for link in (hw.interconnect.intra_node, hw.interconnect.inter_node):
        if link:
            figures += [link.bandwidth, link.latency]
            for algorithm in link.all_reduce:
                figures += [algorithm.latency, algorithm.bus_efficiency]
    if hw.runtime is not None:
        figures += [hw.runtime.graph_kernel_overhead, hw.runtime.step_overhead, hw.runtime.memory_reserve]
    return figures


@pytest.mark.parametrize("name", hardware_names())
def test_every_figure_has_a_source(name: str) -> None:
    for fig in _figures(load_hardware(name)):
        assert fig.source and fig.source != "user-supplied", f"{name}: a figure lacks its source"


def test_h100_bf16_ridge(h100: rooflm.HardwareSpec) -> None:
    # 989.4e12 FLOP/s / 3.35e12 B/s = 295.34 FLOP/B (design doc).
    assert h100.ridge("bf16") == pytest.approx(295.34, abs=0.01)
    # fp8 doubles the peak on the same bandwidth: 1978.9 / 3.35 = 590.7.
    assert h100.ridge("fp8") == pytest.approx(590.7, abs=0.1)


@pytest.mark.parametrize(("name", "ridge"), [("a100-sxm", 153), ("h200", 206), ("b200", 281), ("mi300x", 247),
                                             ("l4", 403)])
def test_published_bf16_ridges(name: str, ridge: float) -> None:
    # Datasheet peak / bandwidth: A100 312e12 / 2.039e12 = 153; H200 989.4e12 / 4.8e12 = 206; B200 2.25e15 / 8e12
    # = 281 (NVIDIA's DGX B200 datasheet: 64 TB/s for 8 GPUs = 8 TB/s each; 292 was 2.25e15 / 7.7e12);
    # MI300X 1307.4e12 / 5.3e12 = 247; L4 121e12 / 300e9 = 403.
    assert load_hardware(name).ridge("bf16") == pytest.approx(ridge, rel=0.01)


@pytest.mark.parametrize("alias", ["H100", "h100-sxm5-80gb", "H100_SXM5_80GB", "  h100-SXM  "])
def test_aliases_resolve_case_insensitively(alias: str) -> None:
    assert load_hardware(alias).name == "h100-sxm"


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(rooflm.UnknownNameError, match="h100"):
        load_hardware("h10-sxm")


def test_missing_roof_is_a_clear_error() -> None:
    with pytest.raises(rooflm.InvalidInputError, match="no fp8 compute roof"):
        load_hardware("a100-sxm").peak("fp8")


def test_user_file_with_plain_numbers(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(
        'name = "mine"\ndisplay_name = "My accelerator"\nvendor = "me"\nkind = "gpu"\n'
        "memory_bandwidth = 1e12\nmemory_capacity = 16e9\nkernel_launch_overhead = 2e-6\n"
        "[peak_flops]\nbf16 = 100e12\n"
        "[efficiency]\nmemory = 0.8\nkernel_overhead = 2e-6\n[efficiency.compute]\ndefault = 0.7\n"
    )
    hw = load_hardware(str(f))
    assert hw.ridge("bf16") == pytest.approx(100.0)
    assert hw.memory_bandwidth.source == "user-supplied"


def test_malformed_user_file_names_the_field(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('name = "bad"\n')
    with pytest.raises(rooflm.InvalidInputError, match="display_name"):
        load_hardware(str(f))
    f.write_text("this is = = not toml")
    with pytest.raises(rooflm.InvalidInputError, match="not valid TOML"):
        load_hardware(str(f))
