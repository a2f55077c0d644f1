"""What a step is and the options it runs under: the workload of one replica (``Step``), the layout, routing,
quantization costs and speculative decoding of a deployment (``Options``), as the graph builder and the engine read
them. Plain records, kept apart from the graph's formulas (rooflm.core.graph)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rooflm.ops import moe
from rooflm.ops.cost import Num
from rooflm.specs.model import ModelSpec
from rooflm.specs.parallel import Parallelism
from rooflm.specs.quant import QuantScheme
from rooflm.specs.quant_costs import NO_COSTS, QuantCosts

MlaDecode = Literal["absorbed", "naive"]


@dataclass(frozen=True)
class Step:
    """``batch`` sequences (per replica) each adding ``q_len`` tokens and attending to ``context``."""

    batch: Num
    q_len: Num
    context: Num
    prefill: bool
    logit_rows: Num

    @property
    def tokens(self) -> Num:
        return self.batch * self.q_len


@dataclass(frozen=True)
class Options:
    parallel: Parallelism = field(default_factory=Parallelism)
    routing: moe.Routing = field(default_factory=moe.Routing)
    mla_decode: MlaDecode = "absorbed"
    all_experts: bool = False  # read every expert (to size the stored weights)
    costs: QuantCosts = NO_COSTS  # in-kernel cost of the quantized formats (calibrated mode)
    # The same per module class (specs.model.MODULES), where a mix runs classes in different schemes; a class
    # not listed uses ``costs``.
    module_costs: tuple[tuple[str, QuantCosts], ...] = ()
    speculation: Speculation | None = None  # speculative decoding: a decode step verifies k drafted tokens
    # Under EP, how many replicas' worth of the busiest replica's tokens an EP group routes: the global batch over the
    # busiest replica's (analysis.run_phase sets it; below dp when the batch does not fill every replica). None: dp.
    group_replicas: Num | None = None


@dataclass(frozen=True)
class Draft:
    """What proposes the drafted tokens: a draft model run once per drafted token at the same batch, or (``mtp``)
    one extra decoder layer of the target per drafted token, as DeepSeek-V3's multi-token-prediction module
    (arXiv:2412.19437 §2.2: a projection of [hidden; embedding] 2h → h, one transformer block, the shared head)."""

    model: ModelSpec
    quant: QuantScheme
    options: Options
    mtp: bool = False


@dataclass(frozen=True)
class Speculation:
    """``tokens`` (k) drafted tokens per step, position i accepted with probability ``acceptance[i]`` given the
    earlier ones were (one rate per position, k of them); no draft: drafting costs nothing (n-gram lookup)."""

    tokens: int
    acceptance: tuple[float, ...]
    draft: Draft | None = None

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens a step emits: 1 + Σ_i Π_{j≤i} p_j (the bonus token, then each accepted prefix); with one
        rate p it is (1 − p^(k+1)) / (1 − p), k + 1 at p = 1 (Leviathan et al., arXiv:2211.17192, eq. 1)."""
        expected, prefix = 1.0, 1.0
        for p in self.acceptance:
            prefix *= p
            expected += prefix
        return expected


DEFAULT_OPTIONS = Options()
