"""The command line: the JSON contract of the design, CSV, tables, and one-line errors with exit 2."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rooflm.cli import app

runner = CliRunner()

TOTALS = {"time_s", "compute_time_s", "memory_time_s", "comm_time_s", "overhead_time_s", "flops", "bytes",
          "weight_bytes", "activation_bytes", "kv_bytes", "arithmetic_intensity", "ridge_intensity", "bound",
          "tokens_per_s"}
OPERATOR = {"name", "kind", "count", "flops", "bytes", "weight_bytes", "activation_bytes", "kv_bytes",
            "arithmetic_intensity", "time_s", "bound"}
MEMORY = {"weights_bytes", "kv_cache_bytes", "activation_bytes", "total_bytes", "capacity_bytes", "fits", "max_batch"}


def run_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_analyze_json_contract() -> None:
    doc = run_json("analyze", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "8")
    assert {"model", "hardware", "phase", "batch", "quant", "totals", "operators", "memory"} <= set(doc)
    assert set(doc["totals"]) >= TOTALS
    assert all(set(o) >= OPERATOR for o in doc["operators"])
    assert set(doc["memory"]) >= MEMORY
    assert doc["totals"]["bound"] in {"compute", "memory", "communication", "overhead"}
    assert doc["batch"] == 8 and doc["phase"] == "decode"


def test_analyze_e2e_adds_request_figures() -> None:
    doc = run_json("analyze", "--phase", "e2e", "--batch", "4", "--prompt-len", "512", "--gen-len", "32")
    assert {"ttft_s", "tpot_s", "output_tokens_per_s"} <= set(doc["totals"])


def test_analyze_table_by_default() -> None:
    result = runner.invoke(app, ["analyze"])
    assert result.exit_code == 0
    assert "gate_up_proj" in result.stdout and "memory" in result.stdout


def test_sweep_json_and_csv() -> None:
    doc = run_json("sweep", "--batch", "1:4096", "--context", "128,1024,8192")
    assert len(doc["points"]) == 12_288
    assert {"batch", "context", *TOTALS} <= set(doc["points"][0])
    csv = runner.invoke(app, ["sweep", "--batch", "1,2,4", "--csv"])
    assert csv.exit_code == 0 and len(csv.stdout.strip().splitlines()) == 4


def test_critical_batch_json() -> None:
    doc = run_json("critical-batch", "--model", "llama-3.1-8b", "--hardware", "h100-sxm")
    # By hand: the weight GEMMs (qkv 4096x6144, o 4096x4096, gate_up 4096x28672, down 14336x4096, x 32 layers, and
    # lm_head 4096x128256) hold W = 7,504,658,432 bf16 weights and move S = 32 * (10,240 + 8,192 + 32,768 + 18,432)
    # + 132,352 = 2,360,576 activation elements per token. 2·B·W / 989.4e12 ≥ 2·(W + B·S) / 3.35e12 at
    # B ≥ W / (W / 295.34 − S) = 325.59: 326. Ridge: 989.4 / 3.35 = 295.34 FLOP/B (NVIDIA H100 datasheet).
    assert doc["critical_batch"] == 326
    assert doc["ridge_intensity"] == pytest.approx(295.34, abs=0.01)


def test_models_and_hardware_commands() -> None:
    show = run_json("models", "show", "llama-3.1-8b")
    # Meta's published size (model card, meta-llama/Llama-3.1-8B): 8,030,261,248 = the 7,504,658,432 GEMM weights
    # above + the 525,336,576 embedding table + 32 * 2 * 4096 + 4096 norm weights. KV: 2 * 32 * 8 * 128 * 2 B.
    assert show["total_params"] == 8_030_261_248 and show["active_params"] == 8_030_261_248
    assert show["kv_bytes_per_token"] == 131_072
    assert any(m["name"] == "llama-3.1-70b" for m in run_json("models", "list")["models"])
    hw = run_json("hardware", "show", "H100")
    # NVIDIA H100 datasheet (SXM): 3.35 TB/s, 989.4 TFLOP/s dense bf16; 81,559 MiB as nvidia-smi reports an H100 80GB.
    assert hw["memory_bandwidth"] == 3.35e12 and hw["memory_capacity"] == 81_559 * 2**20
    assert hw["ridge"]["bf16"] == pytest.approx(295.34, abs=0.01)
    assert hw["peak_flops"]["bf16"] == 989.4e12
    assert len(run_json("hardware", "list")["hardware"]) >= 14


@pytest.mark.parametrize(("args", "needle"), [
    (["analyze", "--model", "llama-3.1-8"], "did you mean 'llama-3.1-8b'"),
    (["analyze", "--hardware", "h100-sxn"], "did you mean 'h100-sxm'"),
    (["analyze", "--batch", "0"], "batch must be a positive integer"),
    (["analyze", "--context", "1000000"], "exceeds the model's maximum"),
    (["analyze", "--quant", "w5a16"], "unknown quantization scheme"),
    (["sweep", "--batch", "1:x"], "not a list of integers"),
    (["analyze", "--model", "/nonexistent/config.json"], "no config.json"),
])
def test_user_mistakes_are_one_line_exit_2(args: list[str], needle: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr + result.stdout


def test_malformed_config_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text('{"model_type": "llama", "hidden_size": 64')
    result = runner.invoke(app, ["analyze", "--model", str(cfg)])
    assert result.exit_code == 2 and "not valid JSON" in result.stderr


@pytest.mark.parametrize(("args", "line"), [
    (["analyze", "--bacth", "3"], "error: No such option: --bacth (did you mean --batch?)"),
    (["--bogus"], "error: No such option: --bogus"),
    (["analyse"], "error: No such command 'analyse'. Did you mean 'analyze'?"),
    (["models", "sho", "x"], "error: No such command 'sho'. Did you mean 'show'?"),
    (["models", "show"], "error: Missing argument 'name'."),
    (["plot", "roofline"], "error: Missing option '--output' / '-o'."),
    (["analyze", "--batch", "x"], "error: Invalid value for '--batch' / '-b': "),
])
def test_usage_errors_are_one_line_exit_2(args: list[str], line: str) -> None:
    """click's own errors (typer draws them as a usage line, a hint and a boxed panel) are one line too."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.startswith(line)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_help_and_a_bare_group_still_show_help() -> None:
    result = runner.invoke(app, ["analyze", "--help"])
    assert result.exit_code == 0 and "--batch" in result.stdout and "Usage" in result.stdout
    bare = runner.invoke(app, ["models"])
    assert "show" in bare.output and "list" in bare.output and "error:" not in bare.output


def _config_named(tmp_path: Path, name: str) -> Path:
    """A copy of a shipped config.json in a folder called ``name``: a model takes its folder's name."""
    folder = tmp_path / name
    folder.mkdir()
    shipped = Path(__file__).parents[2] / "src" / "rooflm" / "data" / "models" / "llama-3.1-8b" / "config.json"
    (folder / "config.json").write_text(shipped.read_text())
    return folder


MARKUP = "[red]m:x:1:100:x1[bold]"  # a folder name: no "/" for a closing tag


def test_user_text_is_never_rich_markup_or_emoji(tmp_path: Path) -> None:
    """rich would read "[red]" as a style and ":100:" as the 💯 emoji; names, values and messages print verbatim."""
    error = runner.invoke(app, ["analyze", "--model", MARKUP])
    assert error.exit_code == 2 and MARKUP in error.stderr
    flag = runner.invoke(app, ["analyze", "--quant", "[bold]w5:x:"])
    assert flag.exit_code == 2 and "'[bold]w5:x:'" in flag.stderr
    folder = _config_named(tmp_path, MARKUP)
    for command in (["models", "show", str(folder)], ["analyze", "--model", str(folder)],
                    ["critical-batch", "--model", str(folder)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        assert MARKUP in result.stdout, command
        assert "💯" not in result.stdout and "❌" not in result.stdout


def test_operator_names_are_not_cut_when_piped() -> None:
    """Piped, a table keeps its natural width; at 80 columns rich cut `embedding_allreduce` to `embeddin…`."""
    result = runner.invoke(app, ["analyze", "--model", "deepseek-v3", "--tp", "8", "--ep", "8", "--hardware", "h200"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    names = json.loads(runner.invoke(app, ["analyze", "--model", "deepseek-v3", "--tp", "8", "--ep", "8",
                                           "--hardware", "h200", "--json"]).stdout)["operators"]
    for op in names:
        assert op["name"] in result.stdout


def test_the_installed_script_prints_usage_errors_on_one_line() -> None:
    """The `rooflm` console script (rooflm.cli:app), not only CliRunner, goes through the one-line handler."""
    script = shutil.which("rooflm", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the rooflm script is not installed next to this Python")
    done = subprocess.run([script, "sweep", "--bacth", "4"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == "error: No such option: --bacth (did you mean --batch?)\n"
