"""Data-dependent output shapes and scalars: the ``datadep`` rewrite of the program forms.

``rewrite_datadep(g, i, ch)`` (one of ``fuzz.gen.forms.REWRITES``) places, right after node ``i``,
a short chain on its first output ``a`` whose middle has a size or a scalar that only the values
decide, and whose end has a static shape again (it becomes a graph output), one call per line::

    mask_9 = torch.gt(a, 0.5)                       # the mask (a bool ``a`` is its own mask)
    nonzero_10 = torch.nonzero(mask_9)              # [u0, rank]: u0 counted from the values
    sum_11 = torch.sum(nonzero_10, 0)               # [rank]

- ``nonzero`` / ``argwhere``: the indices of the mask, summed over the index dim;
- ``masked_select``: ``torch.masked_select(a, mask)`` ([u0]), then ``torch.sum`` of it, of its
  ``torch.cumsum`` or of its square (``torch.mul(s, s)``): kernels over an unbacked size;
- ``unique``: ``torch.unique(k, sorted=True)`` (``return_counts=True`` half the time, then the
  sum of values times counts) of an integer or bool ``a``, or of ``torch.sum(mask, -1)`` (the
  mask's counts along the last dim) for a float one, then ``torch.sum``;
- ``item``: a 0-dim tensor read as a Python number inside the next call's arguments,
  ``torch.sub(a, torch.Tensor.item(torch.amax(a)))``'s two lines (``amax_9 = torch.amax(a)``, then
  ``sub_10 = torch.sub(a, torch.Tensor.item(amax_9))``), or the mask's ``torch.count_nonzero``
  added to ``a``: an unbacked float or int symbol in the compiled graph.

Under ``torch.compile`` these trace without a graph break only with dynamo's capture flags
(``CAPTURE_SETTINGS``); a rewritten graph records them in ``graph.meta["compile_settings"]``
(``META_KEY``), the campaign sets them around that model's compiles only and every ``repro.py``
of its cases sets them too (``fuzz.campaign.knobs.model_knobs``).

A node whose output size depends on values has ``extra["data_dependent"] = "shape"`` (the graph
records its rank and the size zero inputs give; ``fuzz.gen.interpret.check_outputs`` checks only
the rank and dtype), one that reads a scalar out of a tensor has ``"scalar"``; on meta tensors
(shape propagation, ``aten_ops``) both run on CPU zeros. The chain is kept only if it runs on
zeros of the solved shapes; its tensors' shapes and dtypes are what that run gave.
"""

from __future__ import annotations

from fuzz.gen.chooser import Chooser
from fuzz.ir.graph import Graph, Node

CAPTURE_SETTINGS = {"dynamo.capture_dynamic_output_shape_ops": True, "dynamo.capture_scalar_outputs": True}
META_KEY = "compile_settings"
KINDS = ("nonzero", "argwhere", "masked_select", "unique", "item")
THRESHOLDS = (0.0, 0.5, -0.5)
FLOATS = ("float32", "float64", "float16", "bfloat16")
INTS = ("int8", "uint8", "int16", "int32", "int64")
SELECT_TAILS = ("sum", "cumsum", "square")


class _Chain:
    """Nodes placed one after another from position ``at``, removable as a whole."""

    def __init__(self, g: Graph, at: int):
        self.g, self.at, self.nodes = g, at, []

    def call(self, op: str, args: list, kwargs: dict | None = None, stem: str = "t", outputs: int = 1,
             data: str | None = None) -> list[str]:
        names = []
        for _ in range(outputs):
            names.append(self.g.add_tensor([], "float32", "value", name=self.g.fresh_name(stem)))
        node = Node(id=self.g.new_node_id(), op=op, api="function", args=args, kwargs=kwargs or {},
                    outputs=names, extra={"form": "datadep"})
        if data:
            node.extra["data_dependent"] = data
        self.g.nodes.insert(self.at + len(self.nodes), node)
        self.nodes.append(node)
        return names

    def fits(self) -> bool:
        """Run the chain on zeros of the solved shapes; record its tensors' shapes and dtypes."""
        import torch

        from fuzz.gen.interpret import run_node
        from fuzz.ir.record import dtype_from_name, dtype_name

        env = {}
        try:
            for node in self.nodes:
                for t in node.inputs():
                    if t not in env:
                        info = self.g.tensors[t]
                        env[t] = torch.zeros(info.shape, dtype=dtype_from_name(info.dtype))
                env.update(run_node(node, env, {}))
        except Exception:  # noqa: BLE001 (any failure: the chain is not kept)
            return False
        for node in self.nodes:
            for name in node.outputs:
                self.g.tensors[name].shape = [int(d) for d in env[name].shape]
                self.g.tensors[name].dtype = dtype_name(env[name].dtype)
        return True

    def undo(self) -> None:
        for node in self.nodes:
            self.g.nodes.remove(node)
            for name in node.outputs:
                self.g.tensors.pop(name, None)


def _mask(c: _Chain, a: str, dtype: str, ch: Chooser) -> str:
    if dtype == "bool":
        return a
    return c.call("torch.gt", [{"ref": a}, ch.choice(THRESHOLDS) if dtype in FLOATS else 0], stem="mask")[0]


def _chain(c: _Chain, kind: str, a: str, dtype: str, rank: int, ch: Chooser) -> str:
    """Place the chain of ``kind`` on ``a``; the name of its static-shape end."""
    if kind in ("nonzero", "argwhere"):
        idx = c.call(f"torch.{kind}", [{"ref": _mask(c, a, dtype, ch)}], stem=kind, data="shape")[0]
        return c.call("torch.sum", [{"ref": idx}, 0], stem="sum")[0]
    if kind == "masked_select":
        sel = c.call("torch.masked_select", [{"ref": a}, {"ref": _mask(c, a, dtype, ch)}], stem="selected",
                     data="shape")[0]
        tail = ch.choice(SELECT_TAILS)
        if tail == "cumsum":
            sel = c.call("torch.cumsum", [{"ref": sel}, 0], stem="cumsum", data="shape")[0]
        elif tail == "square":
            sel = c.call("torch.mul", [{"ref": sel}, {"ref": sel}], stem="square", data="shape")[0]
        return c.call("torch.sum", [{"ref": sel}], stem="sum")[0]
    if kind == "unique":
        k = a
        if dtype in FLOATS:
            m = _mask(c, a, dtype, ch)
            k = c.call("torch.sum", [{"ref": m}, -1], stem="counts")[0] if rank else m
        if ch.chance(0.5):
            u, n = c.call("torch.unique", [{"ref": k}], {"sorted": True, "return_counts": True}, stem="unique",
                          outputs=2, data="shape")
            u = c.call("torch.mul", [{"ref": u}, {"ref": n}], stem="weighted", data="shape")[0]
        else:
            u = c.call("torch.unique", [{"ref": k}], {"sorted": True}, stem="unique", data="shape")[0]
        return c.call("torch.sum", [{"ref": u}], stem="sum")[0]
    # item: a 0-dim tensor read as a Python number in the next call
    if dtype in FLOATS and ch.chance(0.5):
        s = c.call("torch.amax", [{"ref": a}], stem="amax")[0]
        op = "torch.sub"
    else:
        s = c.call("torch.count_nonzero", [{"ref": _mask(c, a, dtype, ch)}], stem="count")[0]
        op = "torch.add"
    return c.call(op, [{"ref": a}, {"call": "torch.Tensor.item", "args": [{"ref": s}]}], stem=op[6:],
                  data="scalar")[0]


def rewrite_datadep(g: Graph, i: int, ch: Chooser) -> bool:
    """After node ``i``: a data-dependent chain on its first non-empty output (see the module
    docstring), its end a new graph output; False (the graph unchanged) when none fits."""
    node = g.nodes[i]
    outs = [o for o in node.outputs if g.tensors[o].dtype in FLOATS + INTS + ("bool",) and g.tensors[o].numel > 0]
    if not outs:
        return False
    a = outs[0]
    info = g.tensors[a]
    kind = ch.choice(KINDS)
    c = _Chain(g, i + 1)
    end = _chain(c, kind, a, info.dtype, len(info.shape), ch)
    if not c.fits():
        c.undo()
        return False
    next(n for n in c.nodes if n.extra.get("data_dependent")).extra["datadep"] = kind
    g.outputs.append(end)
    g.meta[META_KEY] = dict(CAPTURE_SETTINGS)
    return True
