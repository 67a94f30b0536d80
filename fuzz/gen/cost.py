"""What one call of a generated model may cost: the value search's per-call CPU limit.

The element budget (``fuzz.gen.shapes``) bounds how much a model holds, not how much it computes.
Most operators cost a few nanoseconds per element they read or write, but some grow faster than
their sizes, and the ``large`` shape class (10^4-10^5 elements a tensor) gives them sizes where
one call takes seconds: ``multilabel_margin_loss`` costs about 1 ns per N*C^2 (each of the C
targets of a row walks all C classes), 10 s for one row of 10^5 classes, and the value search
ran such a call up to four times before the model was kept. Over 5,000 default-mix models (seeds
1-5, ``python benchmarks/gen_profile.py calls --seed S``), 99.9% of the calls took under 5 ms of CPU and every call
over 0.2 s was one of: multilabel_margin_loss (0.2-20 s), ``combinations`` (0.24 s), a
higher-order call (``operator.call`` of a transform, 0.19-0.22 s: at the limit), a custom
operator's first call in its process (0.75 s, importing torch._dynamo: not judged, below).

Two rules, both applied by ``fuzz.gen.values`` before a model is kept; the node is then dropped
like one whose call fails on every sample:

- ``predicted_too_slow``: an operator whose cost is known to grow faster than its sizes is not
  called where its estimated work is over ``WORK_LIMIT`` (deterministic: shapes only);
- ``CALL_CPU_LIMIT_S``: any other call that took more than this much CPU time (all threads of
  this process) on the search's run is refused after that run (``CallTimer``; a call that imported
  modules on the way is not judged). This one depends on the machine's
  speed, so a model whose call sits near the limit may come out differently on a much slower or
  faster machine; the limit is 40x above the slowest 0.1% of calls, so that is rare.
"""

from __future__ import annotations

import math
import sys
import time

from fuzz.ir.graph import Node
from fuzz.ir.opnames import last_component

CALL_CPU_LIMIT_S = 0.2
WORK_LIMIT = 5 * 10**7  # estimated inner-loop steps of one call (~50 ms at 1 ns a step)

SLOW_MESSAGE = "too slow"  # the start of both rules' NodeError message (values._structural)


def _multilabel_margin_work(shapes: list) -> int:
    """N * C^2 for an input of shape [C] or [N, C] (the first tensor argument)."""
    if not shapes or not shapes[0]:
        return 0
    s = shapes[0]
    c = s[-1]
    return math.prod(s[:-1]) * c * c


# Operator name (last component, lower case, ``_forward`` stripped) -> work estimate from the
# shapes of its tensor inputs, in argument order (a backward, whose first input is the gradient,
# has no estimate here: the measured rule covers it).
SUPERLINEAR = {
    "multilabel_margin_loss": _multilabel_margin_work,
    "multilabelmarginloss": _multilabel_margin_work,
}


def _key(node: Node) -> str:
    return last_component(node.op).lower().removesuffix("_forward")


def predicted_too_slow(node: Node, env: dict) -> str | None:
    """A reason (starting with ``SLOW_MESSAGE``) when ``node``'s call, at the shapes its inputs
    have in ``env``, is estimated over ``WORK_LIMIT``; None otherwise (or when no estimate exists)."""
    estimate = SUPERLINEAR.get(_key(node))
    if estimate is None:
        return None
    shapes = [list(env[t].shape) for t in node.inputs() if t in env and hasattr(env[t], "shape")]
    work = estimate(shapes)
    if work > WORK_LIMIT:
        return f"{SLOW_MESSAGE}: about {work:.1e} steps for one call (limit {WORK_LIMIT:.0e}); not called"
    return None


class CallTimer:
    """``with CallTimer() as t: call()``, then ``t.too_slow()``: a reason when the call took more
    than ``CALL_CPU_LIMIT_S`` of CPU. A call that imported modules is not judged: its time is the
    process's one-off cost (the first call of a custom operator imports torch._dynamo, 1-2 s),
    not the call's; the operator's next run is judged."""

    def __enter__(self) -> "CallTimer":
        self._modules = len(sys.modules)
        self._t0 = time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.cpu_s = time.process_time() - self._t0
        self.imported = len(sys.modules) != self._modules

    def too_slow(self) -> str | None:
        if self.imported or self.cpu_s <= CALL_CPU_LIMIT_S:
            return None
        return f"{SLOW_MESSAGE}: {self.cpu_s:.2f} s of CPU for one call (limit {CALL_CPU_LIMIT_S} s)"
