"""Custom operators as program forms (the ``custom_op`` rewrite of ``fuzz.gen.forms``).

After a node making a float tensor ``a`` (rank >= 1), one call of a ``fuzz.gen.custom_ops``
operator is placed, each on one readable line (``torch.ops.assay.<name>.default(...)``):

- ``scale_shift_``: ``c = torch.clone(a)``; half the time ``v =`` a view of ``c`` (select, slice,
  narrow, transpose, diagonal: what ``view_write`` takes); ``assay::scale_shift_(v, s, t)``
  writes into it; every later reader of ``a`` reads ``c``, which must show the write;
- ``mix_``: ``c = torch.clone(a)``; two disjoint views of ``c`` along one dim (two ``select``s of
  different indices, or the two halves by ``narrow``), both written by one call;
- ``accumulate``: ``c = torch.clone(a)`` (or a view of it) gets ``+= x`` and the call returns a
  new tensor; ``x`` is ``a`` itself when it has the written tensor's shape, else a new input;
- ``soft_threshold``: functional, on ``a`` or on a transposed view of it; half the time later
  readers of ``a`` read its result instead (same shape and dtype).

Each call is first run on zero tensors and kept only when it runs and gives the graph's shapes.
Written tensors are always clones of graph values (never inputs or parameters). A node of a
call that returns nothing has no outputs: ``Graph.prune`` keeps it for its writes. The node's
``extra["form"]`` is ``custom_op`` and ``extra["custom_op"]`` names the operator;
``graph.meta["forms"]`` lists the operator's name.
"""

from __future__ import annotations

from fuzz.gen.chooser import Chooser
from fuzz.gen.graph_edits import read_later, solved_view
from fuzz.gen.state_forms import run_on_zeros
from fuzz.ir.graph import Graph, Node

FLOATS = ("float32", "float64", "float16", "bfloat16")
OPS = ("scale_shift_", "mix_", "accumulate", "soft_threshold")
SCALES = (0.5, -1.5, 2.0, 3.0)
SHIFTS = (0.25, -1.0, 0.0, 7.5)
WEIGHTS = (0.25, 0.5, 0.75, 1.0)
THRESHOLDS = (0.1, 0.5, 1.0)


def _node(g: Graph, op: str, overload: str, args: list, outputs: list[str], form: str) -> Node:
    return Node(id=g.new_node_id(), op=op, api="aten", overload=overload, args=args, kwargs={},
                outputs=outputs, kind="symbolic", extra={"form": form})


def _view(g: Graph, base: str, ch: Chooser) -> Node | None:
    """A node making a view of ``base`` (see ``fuzz.gen.graph_edits.VIEWS``), its shape solved; None if none fits."""
    info = g.tensors[base]
    made = solved_view(ch, info)
    if made is None:
        return None
    op, overload, ints, shape = made
    name = g.add_tensor(shape, info.dtype, "value", name=g.fresh_name("view"))
    return _node(g, op, overload, [{"ref": base}] + ints, [name], "custom_op_view")


def _disjoint_views(g: Graph, base: str, ch: Chooser) -> list[Node] | None:
    """Two nodes making views of ``base`` that share no element, of one shape; None if ``base`` is too small."""
    info = g.tensors[base]
    dims = [d for d, n in enumerate(info.shape) if n >= 2]
    if not dims:
        return None
    d = ch.choice(dims)
    n = info.shape[d]
    if ch.chance(0.5):
        i, j = ch.integer(0, n - 1), ch.integer(0, n - 2)
        j = j + 1 if j >= i else j
        shape = info.shape[:d] + info.shape[d + 1:]
        picks = [("aten::select", "int", [d, i]), ("aten::select", "int", [d, j])]
    else:
        half = n // 2
        shape = info.shape[:d] + [half] + info.shape[d + 1:]
        picks = [("aten::narrow", "default", [d, 0, half]), ("aten::narrow", "default", [d, n - half, half])]
    nodes = []
    for op, overload, ints in picks:
        name = g.add_tensor(list(shape), info.dtype, "value", name=g.fresh_name("part"))
        nodes.append(_node(g, op, overload, [{"ref": base}] + ints, [name], "custom_op_view"))
    return nodes


def _placed(g: Graph, kind: str, a: str, ch: Chooser) -> tuple[list[Node], str | None, str | None] | None:
    """(nodes to place after ``a``'s node, the tensor later readers of ``a`` read instead or None,
    a new graph output or None) of a ``kind`` call; None if it does not fit."""
    info = g.tensors[a]
    op = "assay::" + kind
    if kind == "soft_threshold":
        nodes, x = [], a
        if len(info.shape) >= 2 and ch.chance(0.4):
            shape = info.shape[:-2] + [info.shape[-1], info.shape[-2]]
            name = g.add_tensor(shape, info.dtype, "value", name=g.fresh_name("transposed"))
            r = len(info.shape)
            nodes.append(_node(g, "aten::transpose", "int", [{"ref": a}, r - 2, r - 1], [name], "custom_op_view"))
            x = name
        y = g.add_tensor(list(g.tensors[x].shape), info.dtype, "value", name=g.fresh_name("thresholded"))
        nodes.append(_node(g, op, "default", [{"ref": x}, ch.choice(THRESHOLDS)], [y], "custom_op"))
        return nodes, (y if x == a and ch.chance(0.5) else None), y
    clone_name = g.add_tensor(list(info.shape), info.dtype, "value", name=g.fresh_name("clone"))
    clone = Node(id=g.new_node_id(), op="torch.clone", api="function", args=[{"ref": a}], kwargs={},
                 outputs=[clone_name], kind="symbolic", extra={"form": "custom_op_clone"})
    nodes = [clone]
    if kind == "mix_":
        views = _disjoint_views(g, clone_name, ch)
        if views is None:
            return None
        nodes += views
        call = _node(g, op, "default", [{"ref": views[0].outputs[0]}, {"ref": views[1].outputs[0]},
                                        ch.choice(WEIGHTS)], [], "custom_op")
        return nodes + [call], clone_name, None
    target = clone_name
    if ch.chance(0.5):
        view = _view(g, clone_name, ch)
        if view is not None:
            nodes.append(view)
            target = view.outputs[0]
    if kind == "scale_shift_":
        call = _node(g, op, "default", [{"ref": target}, ch.choice(SCALES), ch.choice(SHIFTS)], [], "custom_op")
        return nodes + [call], clone_name, None
    if kind == "accumulate":
        shape = g.tensors[target].shape
        x = a if list(shape) == list(info.shape) else g.add_tensor(list(shape), info.dtype, "input",
                                                                    name=g.fresh_name("addend"))
        y = g.add_tensor(list(shape), info.dtype, "value", name=g.fresh_name("accumulated"))
        call = _node(g, op, "default", [{"ref": target}, {"ref": x}], [y], "custom_op")
        return nodes + [call], clone_name, y
    raise ValueError(f"unknown custom operator {kind!r}")


def rewrite_custom_op(g: Graph, i: int, ch: Chooser) -> bool:
    """A custom operator call on the first float output of node ``i``, placed right after it (see
    the module docstring); False, with the graph unchanged, when none fits or runs."""
    return place_custom_op(g, i, ch.choice(OPS), ch)


def place_custom_op(g: Graph, i: int, kind: str, ch: Chooser) -> bool:
    """``rewrite_custom_op`` with the operator ``kind`` (one of ``OPS``)."""
    node = g.nodes[i]
    outs = [o for o in node.outputs if g.tensors[o].dtype in FLOATS and g.tensors[o].shape
            and all(d > 0 for d in g.tensors[o].shape)]
    if not outs:
        return False
    a = outs[0]
    before = set(g.tensors)
    made = _placed(g, kind, a, ch)
    if made is None or run_on_zeros(g, made[0]) is None:
        for t in set(g.tensors) - before:
            del g.tensors[t]
        return False
    nodes, instead, new_output = made
    nodes[-1].extra["custom_op"] = kind
    g.nodes[i + 1:i + 1] = nodes
    end = i + 1 + len(nodes)
    if instead is not None:
        read_later(g, end, a, instead)
        if a in g.outputs or not any(a in n.inputs() for n in g.nodes[end:]):
            g.outputs = [o for o in g.outputs if o != a] + ([instead] if instead not in g.outputs else [])
    if new_output is not None and new_output not in g.outputs:
        g.outputs.append(new_output)
    return True
