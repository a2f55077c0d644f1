"""The CLI's tables: every part of a total is shown, names are never cut, and the quant table says what does not fit."""

import io

from rich.console import Console, RenderableType

import rooflm
from rooflm import units
from rooflm.analyses.quant_comparison import compare_quant
from rooflm.cli import render


def text(renderable: RenderableType, width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_memory_panel_lists_every_part_and_the_one_that_does_not_fit() -> None:
    # Prefill of 55 × 8192 tokens in chunks of 32,768 on an H100: weights 16.1 GB + KV cache 59.1 GB fit in the
    # 75.9 GB the engine may fill; the 2.8 GB activation workspace does not (the derivation is in tests/explain/test_prose.py).
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="prefill", batch=55, prompt_len=8192,
                       max_num_batched_tokens=32768)
    m = r.memory
    shown = text(render.analysis(r))
    for part in (m.weights_bytes, m.kv_cache_bytes, m.activation_bytes, m.total_bytes, m.capacity_bytes):
        assert units.nbytes(part) in shown
    assert f"the activations ({units.nbytes(m.activation_bytes)}) do not fit" in shown


def test_operator_names_fold_instead_of_being_cut_at_80_columns() -> None:
    r = rooflm.analyze("deepseek-v3", "h200", tp=8, ep=8)
    shown = text(render.analysis(r), width=80)
    table = shown[shown.index("operators"):shown.index("experts (one MoE layer)")]
    cells = "".join(line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│"))
    for op in r.operators:  # a folded name continues on the next line of its cell
        assert op.name in cells
        cells = cells.replace(op.name, "", 1)


def test_quant_table_marks_points_that_do_not_fit() -> None:
    # llama-3.1-70b: 70.6 B parameters. In bf16 its weights are 141 GB, more than an H100's 80 GB; in w4a16 about
    # 0.5 B each, ≈ 37 GB, and the KV cache of one 1024-token sequence is 1024 × 327 680 B (80 layers × 8 KV heads ×
    # 128 × 2 × 2 B) = 0.34 GB: w4a16 fits, bf16 does not.
    cmp = compare_quant("llama-3.1-70b", "h100-sxm", schemes=["bf16", "w4a16"], batch=[1], context=[1024])
    assert cmp.fits["bf16"].tolist() == [False] and cmp.fits["w4a16"].tolist() == [True]
    shown = text(render.quant_table(cmp))
    row = next(line for line in shown.splitlines() if line.startswith("│") and "1024" in line)
    base_time, w4a16 = (cell.strip() for cell in row.split("│")[3:5])
    assert base_time.endswith("✗") and not w4a16.endswith("✗")
    assert "✗ does not fit in device memory" in shown


def test_quant_table_header_names_layout_and_kv_dtype() -> None:
    cmp = compare_quant("llama-3.1-8b", "h100-sxm", schemes=["bf16", "fp8", "w4a16+kv-int4"], batch=[1], context=[1024],
                        tp=2, kv_dtype="fp8")
    header = text(render.quant_table(cmp)).splitlines()[0]
    assert "(tp=2)" in header
    assert "KV cache fp8 (w4a16+kv-int4: int4)" in header
    whole = text(render.quant_table(compare_quant("llama-3.1-8b", "h100-sxm", batch=[1], context=[1024])))
    assert "✗" not in whole  # 16 GB of weights fit: no mark, no legend


def test_quant_table_says_which_schemes_were_left_out() -> None:
    # An A100 has no FP8 tensor cores: its fp8 column would be empty, so the table says why it is missing.
    cmp = compare_quant("llama-3.1-8b", "a100-sxm", schemes=["bf16", "fp8", "w4a16"], batch=[1], context=[1024])
    assert [s.scheme for s in cmp.skipped] == ["fp8"]
    assert "fp8 not compared: a100-sxm has no fp8 compute roof" in text(render.quant_table(cmp))


def test_a_long_quant_table_shows_its_first_and_last_rows() -> None:
    # 100 batches × 2 schemes: 100 rows, past the limit of 60, so rows 0–29 and 70–99 are shown with "…" between
    # (the batch axis is the row number + 1 here, so the batches shown are 1–30 and 71–100).
    cmp = compare_quant("llama-3.1-8b", "h100-sxm", schemes=["bf16", "fp8"], batch=list(range(1, 101)), context=[512])
    lines = text(render.quant_table(cmp, limit=60)).splitlines()
    first_cells = [line.split("│")[1].strip() for line in lines if line.startswith("│")]
    shown = [int(c) for c in first_cells if c.isdigit()]
    assert shown == [*range(1, 31), *range(71, 101)]
    assert "…" in first_cells
    full = [line.split("│")[1].strip() for line in text(render.quant_table(cmp, limit=200)).splitlines()
            if line.startswith("│")]
    assert [int(c) for c in full if c.isdigit()] == list(range(1, 101))


def _header(shown: str) -> list[str]:
    table = shown[shown.index("operators"):]
    line = next(line for line in table.splitlines() if line.startswith("┃"))
    return [cell.strip() for cell in line.split("┃")[1:-1]]


def _scheme_of(shown: str, operator: str) -> str:
    table = shown[shown.index("operators"):]
    row = next(line for line in table.splitlines() if line.startswith("│") and line.split("│")[1].strip() == operator)
    return row.split("│")[2].strip()


def test_operator_table_names_each_operators_scheme_when_the_checkpoint_mixes_them() -> None:
    # gpt-oss-120b's checkpoint (quantization_config: quant_method mxfp4, modules_to_not_convert = attention, router,
    # embeddings, lm_head) stores its routed experts in MXFP4 — 4-bit fp4 values with a shared scale per 32 — and
    # everything else in bf16: two schemes, so the table gains a column saying which one each operator ran in.
    r = rooflm.analyze("gpt-oss-120b", "h100-sxm", batch=1, context=4096)
    assert r.quant == "native"
    shown = text(render.analysis(r))
    assert _header(shown)[:2] == ["operator", "scheme"]
    assert _scheme_of(shown, "experts.gate_up_proj") == "mxfp4 (fp4)"  # the weight dtype differs from the name
    assert _scheme_of(shown, "experts.down_proj") == "mxfp4 (fp4)"
    for op in ("qkv_proj", "o_proj", "router", "lm_head"):
        assert _scheme_of(shown, op) == "bf16"
    assert _scheme_of(shown, "rope") == ""  # no weights, no scheme


def test_operator_table_has_no_scheme_column_when_every_gemm_runs_in_one() -> None:
    # Llama-3.1-8B's checkpoint is bf16 throughout: nothing to tell apart.
    shown = text(render.analysis(rooflm.analyze("llama-3.1-8b", "h100-sxm")))
    assert "scheme" not in _header(shown)


def test_the_quant_header_names_the_overrides_its_numbers_assume() -> None:
    # Defaults are left out (nothing given: no override); what was given away from its default is named, in the
    # table's header and in the JSON document.
    plain = compare_quant("llama-3.1-8b", "h100-sxm", schemes=["bf16", "fp8"], batch=[1], efficiency="calibrated")
    assert plain.overrides == {}
    cmp = compare_quant("llama-3.1-8b", "h100-sxm", schemes=["bf16", "fp8"], batch=[1], efficiency="calibrated",
                        eta_memory=0.7, dequant_ops=2.0, tp=1)
    assert cmp.overrides == {"eta_memory": 0.7, "dequant_ops": 2.0}
    assert "eta_memory=0.7 · dequant_ops=2.0" in text(render.quant_table(cmp))
    assert cmp.to_json_dict()["overrides"] == {"eta_memory": 0.7, "dequant_ops": 2.0}
