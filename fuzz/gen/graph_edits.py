"""Edits of a solved graph that several program forms make (``fuzz.gen.forms``,
``fuzz.gen.hop_forms``, ``fuzz.gen.custom_op_forms``): a view of a tensor, with its shape solved on
a meta tensor, and the later readers of a tensor redirected to another."""

from __future__ import annotations

from fuzz.gen.chooser import Chooser
from fuzz.ir.graph import Graph, replace_refs

VIEWS = ("select", "slice", "transpose", "diagonal", "narrow")


def read_later(g: Graph, index: int, old: str, new: str) -> None:
    """Nodes from ``index`` on read ``new`` where they read ``old``; so does the graph's output list."""
    for n in g.nodes[index:]:
        n.args = replace_refs(n.args, {old: new})
        n.kwargs = {k: replace_refs(v, {old: new}) for k, v in n.kwargs.items()}
    g.outputs = [new if o == old else o for o in g.outputs]


def _view_call(ch: Chooser, shape: list) -> tuple[str, str, list] | None:
    """A view of a tensor of ``shape`` (one of ``VIEWS``): (aten op, overload, its int arguments), or
    None for a 0-dim tensor."""
    rank = len(shape)
    if rank == 0:
        return None
    kind = ch.choice([v for v in VIEWS if rank >= 2 or v not in ("transpose", "diagonal")])
    d = ch.integer(0, rank - 1)
    if kind == "select":
        return "aten::select", "int", [d, ch.integer(0, shape[d] - 1)]
    if kind == "slice":
        start = ch.integer(0, shape[d] - 1)
        return "aten::slice", "Tensor", [d, start, shape[d], ch.integer(1, 2)]
    if kind == "narrow":
        start = ch.integer(0, shape[d] - 1)
        return "aten::narrow", "default", [d, start, ch.integer(1, shape[d] - start)]
    if kind == "transpose":
        return "aten::transpose", "int", [0, rank - 1]
    return "aten::diagonal", "default", [0, 0, 1]


def solved_view(ch: Chooser, info) -> tuple[str, str, list, list] | None:
    """A view of a tensor like ``info`` (one of ``VIEWS``): (aten op, overload, its int arguments,
    the view's shape, solved on a meta tensor); None for a 0-dim tensor or a view its sizes do not
    allow."""
    import torch

    from fuzz.gen.interpret import resolve_cached

    made = _view_call(ch, info.shape)
    if made is None:
        return None
    op, overload, ints = made
    try:
        shape = resolve_cached(op, "aten", overload)(torch.empty(info.shape, device="meta"), *ints).shape
    except Exception:  # noqa: BLE001 (a view the sizes do not allow)
        return None
    return op, overload, ints, list(shape)
