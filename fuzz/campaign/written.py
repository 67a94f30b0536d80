"""The state a model's ``forward`` writes, judged after each call like an output.

A model of a state form (``fuzz.gen.state_forms``) updates a buffer or writes into a graph input in
place; a compiler must functionalise the write and write the result back exactly once. So every
run (eager, float64, compiled; fwd, bwd, dynamic) starts from its own copy of the module and the
inputs, and the values of the written buffers (``buffer:<name>``) and inputs (``input:<name>``)
after the call are appended to the run's values. Their float64 reference, the reason a value is
not judged and its precision are those of the graph value that holds the state after the call
(``graph.meta["writes"]``). Train mode judges every buffer already (``fuzz.campaign.train``).
"""

from __future__ import annotations

from dataclasses import dataclass

UNREADABLE = "the backend keeps its own copy of the model's buffers (not readable after the call)"


@dataclass(frozen=True)
class Write:
    label: str   # the value's name in a Reference: buffer:<state-dict key> or input:<forward argument>
    kind: str    # "buffer" | "input"
    key: str     # the state-dict key or the forward argument's name
    value: str   # the graph tensor that holds the state after the call


def writes(graph, input_names: list[str]) -> list[Write]:
    """The model's written state, in ``graph.meta["writes"]`` order."""
    from fuzz.gen.program import tensor_identifiers
    from fuzz.ir.graph import written_state

    idents = tensor_identifiers(graph)
    out = []
    for state, value in written_state(graph):
        key = idents[state]
        if graph.tensors[state].role == "param":
            out.append(Write(f"buffer:{key}", "buffer", key, value))
        elif key in input_names:
            out.append(Write(f"input:{key}", "input", key, value))
    return out


def written_inputs(ws: list[Write], input_names: list[str]) -> set[int]:
    """Positions of the written inputs (they must not be leaves that require grad)."""
    names = {w.key for w in ws if w.kind == "input"}
    return {i for i, n in enumerate(input_names) if n in names}


def _buffers(fn, module):
    import torch

    holder = fn if isinstance(fn, torch.nn.Module) else module
    return {n.replace("_orig_mod.", ""): b for n, b in holder.named_buffers()} if holder is not None else None


def read(ws: list[Write], fn, module, inputs, input_names: list[str]) -> list:
    """The written state after a call of ``fn`` (``module`` is what it was compiled from; a
    compiled ``nn.Module`` is read itself: an exported program holds its own buffers). A buffer
    is None when ``fn`` is neither a module nor backed by ``module`` (``module`` None)."""
    by_name = dict(zip(input_names, inputs))
    buffers = _buffers(fn, module)
    out = []
    for w in ws:
        t = by_name.get(w.key) if w.kind == "input" else (buffers or {}).get(w.key)
        out.append(t.detach().clone() if t is not None else None)
    return out


def restore(ws: list[Write], fn, module, pristine) -> None:
    """Put the written buffers of the module ``fn`` runs back to ``pristine``'s (before a second
    call, which is judged from the same starting state as its reference)."""
    import torch

    buffers = _buffers(fn, module) or {}
    start = dict(pristine.named_buffers())
    with torch.no_grad():
        for w in ws:
            if w.kind == "buffer" and w.key in buffers and w.key in start:
                buffers[w.key].copy_(start[w.key])


def labels(ws: list[Write], prefix: str = "") -> list[str]:
    return [prefix + w.label for w in ws]
