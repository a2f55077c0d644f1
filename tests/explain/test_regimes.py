"""explain's regime section and, on a CPU, why int4 pays there next to a GPU: numbers from regimes/critical_batch."""

import rooflm
from rooflm import units


def test_regime_section_carries_the_tables_numbers() -> None:
    e = rooflm.explain("llama-3.1-8b", "h100-sxm", efficiency="ideal")  # regimes' default mode
    t = rooflm.regimes("llama-3.1-8b", "h100-sxm")
    md = e.to_markdown()
    assert "## The regimes of this model here" in md
    for row in t.regimes:
        assert f"**{row.name}**" in md and units.seconds(row.time_s) in md
        assert f"{row.quant_speedup:.2f}×" in md
    assert e.cpu_vs_gpu is None and "on this CPU" not in md  # a GPU gets no CPU comparison
    assert [r["name"] for r in e.to_json_dict()["regime_table"]] == [r.name for r in t.regimes]  # type: ignore[index]


def test_cpu_explains_int4_next_to_a_gpu() -> None:
    e = rooflm.explain("llama-3.1-8b", "ryzen-5800x", efficiency="ideal")  # critical_batch's default mode
    c = e.cpu_vs_gpu
    assert c is not None and c.gpu.hardware == "h100-sxm"
    cpu_cb = rooflm.critical_batch("llama-3.1-8b", "ryzen-5800x", quant="w4a16").critical_batch_unconstrained
    gpu_cb = rooflm.critical_batch("llama-3.1-8b", "h100-sxm", quant="w4a16").critical_batch_unconstrained
    assert (c.cpu.critical_batch_int4, c.gpu.critical_batch_int4) == (cpu_cb, gpu_cb)
    # Ridge 972.8 GFLOP/s / 51.2 GB/s = 19 FLOP/B against the H100's 295: int4 stops paying at a far smaller batch.
    assert cpu_cb is not None and gpu_cb is not None and cpu_cb < gpu_cb
    md = e.to_markdown()
    assert "## Weight quantization on this CPU, next to h100-sxm" in md
    assert f"batch {cpu_cb} in int4 on the CPU" in md and "stops paying sooner" in md
    # Batch-1 decode is DRAM-bound on both: the same bytes saved, the same speed-up (3.16× in the ideal mode).
    assert c.cpu.decode_speedup is not None and abs(c.cpu.decode_speedup - c.gpu.decode_speedup) < 0.01  # type: ignore[operator]
