"""`rooflm hardware show`: besides the datasheet, the figures calibrated mode uses, each with its source: the flat
fractions and engine costs of the hardware file and the kernel families of the device's class."""

from __future__ import annotations

import json
import tomllib

from typer.testing import CliRunner

from rooflm.cli import app
from rooflm.cli.render_hardware import curve_text
from rooflm.specs.figures import GemmCurve
from rooflm.specs.hardware import HARDWARE_DIR, grouped, load_hardware
from rooflm.specs.kernels import KERNELS_FILE

runner = CliRunner()


def _show(*args: str) -> str:
    result = runner.invoke(app, ["hardware", "show", *args], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_table_shows_each_kernel_family_with_its_source() -> None:
    text = _show("h100-sxm")
    # The H100's decode-attention curve as data/kernels.toml states it: 0.77 of the bandwidth, 16 µs per kernel, fitted
    # to onnxruntime PR #21414's paged-decode sweep.
    row = next(line for line in text.splitlines() if "attention-decode: memory" in line)
    assert "0.77 of the bandwidth" in row and "onnxruntime PR #21414" in row
    assert any("attention-decode: fill" in line and "16 µs per kernel" in line for line in text.splitlines())
    assert "per-step CPU cost" in text and "250 µs" in text  # the hardware file's runtime step_overhead (0.25 ms)


def test_a_device_without_a_kernel_class_shows_no_families() -> None:
    text = _show("tpu-v5e")
    assert "calibrated mode: flat fractions" in text and "kernel families" not in text


def test_the_json_carries_the_families_as_the_data_file_states_them() -> None:
    doc = json.loads(_show("h200", "--json"))
    with KERNELS_FILE.open("rb") as fh:
        hopper = tomllib.load(fh)["hopper"]  # the H200's class
    assert set(doc["kernel_families"]) == set(hopper)
    for family, entry in hopper.items():
        got = doc["kernel_families"][family]
        assert got["memory"]["value"] == entry["memory"]["value"]
        assert got["fill"]["value"] == entry["fill"]["value"]
        assert (got["compute"] or {}).get("value") == entry.get("compute", {}).get("value")
    assert json.loads(_show("tpu-v5e", "--json"))["kernel_families"] == {}


def test_a_curve_reads_as_its_ends() -> None:
    assert curve_text(GemmCurve(rows=[1], value=[0.67])) == "0.67 at M = 1"
    assert curve_text(GemmCurve(rows=[1024, 2048, 8192], value=[0.368, 0.566, 0.692])) == \
        "0.368 at M = 1,024 … 0.692 at M = 8,192 (3 points)"


def test_the_memory_levels_bandwidths_are_shown() -> None:
    # h100-sxm.toml's [[levels]]: each level's bandwidth with its source, as the file states it.
    with (HARDWARE_DIR / "h100-sxm.toml").open("rb") as fh:
        levels = tomllib.load(fh)["levels"]
    lines = _show("h100-sxm").splitlines()
    for level in levels:
        row = next(line for line in lines if f"level {level['name']} bandwidth" in line)
        assert level["bandwidth"]["source"][:40] in row


def test_the_list_groups_devices_by_vendor_then_cpus() -> None:
    result = runner.invoke(app, ["hardware", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    first = [line.split("│")[1].strip() for line in result.output.splitlines() if line.startswith("│")]
    titles = ["NVIDIA", "AMD", "Google", "Intel", "Huawei", "CPUs"]
    at = {title: first.index(title) for title in titles}
    assert [at[t] for t in titles] == sorted(at.values())  # the groups in this order
    def group_of(name: str) -> str:
        return max((t for t in titles if at[t] < first.index(name)), key=lambda t: at[t])
    assert group_of("gb200") == group_of("h20") == "NVIDIA" and group_of("mi355x") == "AMD"
    assert group_of("tpu-v7") == "Google" and group_of("gaudi3") == "Intel" and group_of("ascend-910c") == "Huawei"
    # A CPU is listed with the CPUs, whoever makes it: the Xeon is Intel's and the EPYC AMD's.
    assert group_of("xeon-8480") == group_of("epyc-9654") == "CPUs"


def test_the_list_json_names_each_device_vendor_and_group_in_listing_order() -> None:
    result = runner.invoke(app, ["hardware", "list", "--json"])
    assert result.exit_code == 0, result.output
    devices = json.loads(result.stdout)["hardware"]
    assert {d["name"]: d["vendor"] for d in devices}["xeon-8480"] == "Intel"
    for d in devices:  # the fields the list always had stay, "vendor" among them
        assert {"name", "display_name", "vendor", "kind", "peak_flops", "memory_bandwidth", "ridge"} <= set(d)
        assert d["group"] == ("CPUs" if d["kind"] == "cpu" else d["vendor"])
    groups = [d["group"] for d in devices]
    assert groups == sorted(groups, key=[g for i, g in enumerate(groups) if g not in groups[:i]].index)  # contiguous


def test_a_vendor_outside_the_listed_ones_comes_after_them_and_before_the_cpus() -> None:
    h100, xeon = load_hardware("h100-sxm"), load_hardware("xeon-8480")
    other = h100.model_copy(update={"name": "mine", "vendor": "Acme"})
    assert [g for g, _ in grouped([xeon, other, h100])] == ["NVIDIA", "Acme", "CPUs"]
