"""Operators whose cost grows step by step with a dim: a bound on that dim.

Recurrent layers (``torch.nn.LSTM``, ``GRU``, ``RNN``, and their functional forms should a rules
file hold them) run one cell per time step. On the meta device, where the generator checks calls
of more than ``callcheck.META_CPU_LIMIT`` elements, each step is a Python decomposition (about
2.6 ms here), and an eager run is a C++ loop of the same length: an unbatched LSTM over 65,536
steps (the large shape class puts a model's bulk on the outer dim) took 168 s to check in the
nineteenth session (model 130 of ``--shapes large``, seed 0), three minutes of a campaign
worker's model preparation for one test. Their sequence dims (the first two of a batched input,
either of which ``batch_first`` may make the time dim) stay at most ``STEPS``. Cells
(``LSTMCell``...) run one step and are not bounded.
"""

from __future__ import annotations

from fuzz.ir.opnames import last_component

RECURRENT = frozenset({"LSTM", "GRU", "RNN", "lstm", "gru", "rnn_tanh", "rnn_relu"})
STEPS = 64


def loop_bounds(op: str, operand_dims: list) -> list[str]:
    """SMT-LIB bounds on the step dims of ``op``'s input (its first operand), or none."""
    if last_component(op) not in RECURRENT or not operand_dims or not operand_dims[0]:
        return []
    dims = operand_dims[0]
    steps = dims[:2] if len(dims) >= 3 else dims[:1]
    return [f"(<= {d} {STEPS})" for d in steps if isinstance(d, str)] + \
        (["false"] if any(isinstance(d, int) and d > STEPS for d in steps) else [])
