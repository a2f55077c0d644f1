"""The classic case: does int4 (W4A8) still pay over FP8 at large batch?

MiniMax-M2 (shipped in block-scaled FP8, 256 experts, top-8) on 8× H100 and 8× H200 with expert parallelism,
and a dense Llama-3.1-70B on 8× H100 with tensor parallelism, decode at 4k context, batch 1 … 16k.
Run: python examples/int4_at_scale.py   (calibrated mode: dequantization and launch costs included)
"""

from __future__ import annotations

import rooflm

BATCHES = [1, 4, 16, 64, 256, 1024, 4096, 16384]


def show(title: str, model: str, hardware: str, baseline: str, scheme: str, **layout: int) -> None:
    cmp = rooflm.compare_quant(model, hardware, schemes=[baseline, scheme], batch=BATCHES, context=[4096],
                               kv_dtype="fp8", efficiency="calibrated", threshold=0.3, **layout)
    base, quant = cmp.results[baseline].columns, cmp.results[scheme].columns
    print(f"\n{title}: {scheme} over {baseline}, decode at context 4096, fp8 KV cache, calibrated")
    print(f"{'batch':>6} {baseline + ' step':>12} {scheme + ' step':>12} {'speed-up':>9} {'bound':>10} "
          f"{'tokens/expert':>14} {'experts':>8} {'fits':>5}")
    for i, b in enumerate(BATCHES):
        per_expert = f"{quant['tokens_per_expert'][i]:.3g}" if "tokens_per_expert" in quant else "–"
        experts = str(quant["expert_bound"][i]) if "expert_bound" in quant else "–"
        print(f"{b:>6} {base['time_s'][i] * 1e3:>10.2f}ms {quant['time_s'][i] * 1e3:>10.2f}ms "
              f"{cmp.speedup[scheme][i]:>8.2f}× {quant['bound'][i]:>10} {per_expert:>14} {experts:>8} "
              f"{'yes' if quant['fits'][i] else 'no':>5}")
    s = cmp.summaries[0]
    print(f"gain under 30% from batch {s.batch_gain_below_threshold}; "
          + (f"slower than {baseline} from batch {s.batch_slower_than_baseline}" if s.batch_slower_than_baseline
             else f"never slower than {baseline} in this range"))


def main() -> None:
    rooflm_threshold_note = "(the threshold for 'gain gone' here is 30%)"
    print("Where int4 weights stop paying", rooflm_threshold_note)
    for hw in ("h100-sxm", "h200"):
        # MiniMax-M2 ships as fp8 with 128×128 weight blocks: that is the baseline.
        show(f"MiniMax-M2 on 8× {hw}, EP=8", "minimax-m2", hw, "fp8-block", "w4a8", dp=8, ep=8)
    show("Llama-3.1-70B on 8× h100-sxm, TP=8", "llama-3.1-70b", "h100-sxm", "fp8", "w4a8", tp=8)


if __name__ == "__main__":
    main()
