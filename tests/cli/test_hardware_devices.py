"""The catalog's newer devices: each runs `rooflm analyze` for prefill and decode, rack-scale NVLink domains
price their collectives on NVLink, and one ridge per vendor is checked by hand against the datasheet numbers."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rooflm.cli import app
from rooflm.specs.hardware import load_hardware

runner = CliRunner()

NEW_DEVICES = ["h20", "h800", "a800", "l20", "h100-nvl", "b300", "gb200", "gb300", "mi355x", "rtx-4090", "rtx-5090",
               "rtx-pro-6000", "gaudi3", "ascend-910c", "tpu-v7"]


def _analyze(*args: str) -> dict:
    result = runner.invoke(app, ["analyze", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("phase", ["decode", "prefill"])
@pytest.mark.parametrize("name", NEW_DEVICES)
def test_analyze_runs_on_each_new_device(name: str, phase: str) -> None:
    doc = _analyze("--model", "llama-3.1-8b", "--hardware", name, "--phase", phase, "--batch", "4")
    assert doc["hardware"] == name
    assert doc["totals"]["time_s"] > 0 and doc["totals"]["tokens_per_s"] > 0
    assert doc["totals"]["ridge_intensity"] == pytest.approx(load_hardware(name).ridge("bf16"))


def _all_reduce_s(hardware: str) -> float:
    """Seconds of the attention all-reduces of one Llama-3.1-70B decode step of 8 sequences at TP 16, ideal mode."""
    doc = _analyze("--model", "llama-3.1-70b", "--hardware", hardware, "--tp", "16", "--batch", "8",
                   "--efficiency", "ideal")
    return next(o["time_s"] for o in doc["operators"] if o["name"] == "attn_all_reduce")


@pytest.mark.parametrize(("rack", "board"), [("gb200", "b200"), ("gb300", "b300")])
def test_a_tp16_layout_on_an_nvl72_rack_all_reduces_over_nvlink(rack: str, board: str) -> None:
    # One all-reduce of the hidden state: S = 8 sequences x 8192 x 2 B = 131,072 B; a ring sends 2 S (n-1)/n =
    # 2 x 131,072 x 15/16 = 245,760 B per GPU. 80 layers, one after attention each.
    # NVL72: 16 GPUs fit the 72-GPU NVLink domain: 245,760 B / 900 GB/s = 0.27307 us, x 80 = 21.85 us.
    assert _all_reduce_s(rack) == pytest.approx(80 * 245_760 / 900e9, rel=1e-6)
    # An HGX board's NVLink domain is 8 GPUs: 16 cross the 400 Gb/s (b200, 50 GB/s) or 800 Gb/s (b300, 100 GB/s) NIC.
    nic = {"b200": 50e9, "b300": 100e9}[board]
    assert _all_reduce_s(board) == pytest.approx(80 * 245_760 / nic, rel=1e-6)


@pytest.mark.parametrize("rack", ["gb200", "gb300"])
def test_the_rack_is_one_72_gpu_nvlink_domain(rack: str) -> None:
    link = load_hardware(rack).interconnect.intra_node
    assert link is not None and link.devices_per_domain == 72 and "NVLink" in link.name
    # vLLM's one-shot custom all-reduce serves up to 8 GPUs; over the rack NVLS or NCCL take over.
    assert [a.max_devices for a in link.all_reduce if a.name.startswith("one-shot")] == [8]


@pytest.mark.parametrize(("name", "dtype", "ridge"), [
    # H20: 148 TFLOP/s bf16 / 4.0 TB/s = 37.0 FLOP/B (HGX H20 table): decode-like AI already sits near the ridge.
    ("h20", "bf16", 37.0),
    # H800: the H100 SXM roofs, 989.4e12 / 3.35e12 = 295.3.
    ("h800", "bf16", 295.3),
    # L20: 119.5e12 / 864e9 = 138.3.
    ("l20", "bf16", 138.3),
    # GB200 NVL72: 360 PFLOPS sparse / 72 / 2 = 2.5e15 over 576 TB/s / 72 = 8e12: 312.5; fp4 1,440 / 72 / 2 = 10e15: 1250.
    ("gb200", "bf16", 312.5),
    ("gb200", "fp4", 1250.0),
    # B300: 108 PFLOPS dense fp4 / 8 = 13.5e15 over 8e12 = 1687.5.
    ("b300", "fp4", 1687.5),
    # RTX 4090 (Ada whitepaper): bf16 with FP32 accumulate 165.2e12 / 1,008e9 = 163.9.
    ("rtx-4090", "bf16", 163.9),
    # AMD MI355X: 2,516.6e12 / 8e12 = 314.6; MXFP4 10,066.3e12 / 8e12 = 1,258.3.
    ("mi355x", "bf16", 314.6),
    ("mi355x", "fp4", 1258.3),
    # Google TPU7x: 2,307e12 / 7.3e12 = 316.0.
    ("tpu-v7", "bf16", 316.0),
    # Intel Gaudi 3: 1,835e12 / 3.67e12 = 500.0.
    ("gaudi3", "bf16", 500.0),
    # Huawei Ascend 910C: 300 PFLOPS / 384 = 781.25e12 over 3.2e12 = 244.1.
    ("ascend-910c", "bf16", 244.1),
])
def test_hand_checked_ridges(name: str, dtype: str, ridge: float) -> None:
    assert load_hardware(name).ridge(dtype) == pytest.approx(ridge, rel=1e-3)


@pytest.mark.parametrize("name", ["b300", "gb300"])
def test_blackwell_ultra_has_no_int8_roof(name: str) -> None:
    # Its INT8 tensor rate is cut and the published figures disagree: an int8 scheme is refused, naming the roofs.
    assert "int8" not in load_hardware(name).supported_dtypes


def test_the_ascend_supernode_keeps_384_npus_on_its_unified_bus() -> None:
    # CloudMatrix 384: a TP 16 all-reduce stays on UB (392 GB/s per direction), not on the 25 GB/s RoCE scale-out:
    # 80 x 245,760 B / 392e9 B/s (the same message as the NVL72 test above).
    assert _all_reduce_s("ascend-910c") == pytest.approx(80 * 245_760 / 392e9, rel=1e-6)


def test_a_consumer_card_has_no_multi_node_link() -> None:
    # GeForce cards list PCIe only: a layout over more than one 8-card box is refused with one line, not priced.
    result = runner.invoke(app, ["analyze", "--model", "llama-3.1-70b", "--hardware", "rtx-4090", "--tp", "16"])
    assert result.exit_code == 2 and "no interconnect figures for 16 devices" in result.output
