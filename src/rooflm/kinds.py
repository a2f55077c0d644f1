"""The vocabulary that specs, operators and reports share: what kind of kernel an operator is, and the class a
report groups its time by. It lives apart from both so that a hardware spec (which sets an overhead per kind) need
not import the operators, nor the operators the specs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

# "host": CPU time of an engine step (scheduling, input preparation), no kernel.
OpKind = Literal["gemm", "attention", "norm", "elementwise", "embedding", "memory", "communication", "host"]
OP_KINDS: tuple[str, ...] = get_args(OpKind)
# The classes a report groups time by; quantization and plotting reason per class.
OpClass = Literal["weight_gemm", "attention", "expert", "communication", "other"]
OP_CLASSES: tuple[str, ...] = get_args(OpClass)

# What a long run reports as it goes: progress(done, total) in its own units (tables, loads, rows). The API takes
# one as an optional keyword and calls it from the caller's process; the command line draws it as a bar on a
# terminal, so that no layer below the presentation knows about consoles.
Progress = Callable[[int, int], None]
