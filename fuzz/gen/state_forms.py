"""State forms: rewrites of a solved graph that write into the model's state or its inputs in
``forward`` (two values of ``fuzz.gen.forms.FORMS``; ``apply_forms`` calls them like its own).

- ``buffer``: a new float buffer ``running`` (shape ``x.shape[1:]``, ``x``'s dtype) of a float graph
  input ``x`` is updated in place at the start of ``forward``, and every later reader of ``x`` reads
  ``x`` centred by it (what a running-mean normaliser does)::

      mean_5 = torch.mean(x_0, dim=0)                      # 0-dim for a vector x_0
      stat_6 = torch.Tensor.detach(mean_5)
      running_7 = torch.Tensor.lerp_(self.running_4, stat_6, 0.1)   # the buffer, updated
      centred_8 = torch.sub(x_0, running_7)                # later readers of x_0 read this

  Half the time a 0-dim int64 counter buffer is stepped too, ``steps_10 =
  torch.Tensor.add_(self.steps_9, 1)``, and returned. The buffers are graph tensors of role
  ``param`` listed in ``graph.meta["buffers"]`` (``fuzz.gen.program`` registers them with
  ``register_buffer``: no gradient, in the state dict).
- ``input_write``: after node ``i``, a graph input ``x`` is written in place (``add_``/``mul_`` by a
  scalar, ``add_`` of an earlier graph value of ``x``'s shape and dtype, ``index_put_`` with a new
  int64 index input and a new 0-dim value input: ``x[idx] = v``, or a ``fuzz.gen.custom_ops``
  operator writing ``x`` or views of it, ``torch.narrow(x, ...)`` on the call's line, as a KV-cache
  update does; that call returns nothing, and the next line names ``x`` after it); nodes after the
  write read its result. Kept only where no value made before the write shares ``x``'s storage (checked by running
  the nodes before it on zero tensors), so a view read later cannot see the write differently in the
  program and in the generator's interpreter.

Both record ``graph.meta["writes"]``: ``[{"state": x, "value": w}]``, the tensor written (buffer or
input) and the graph value that holds it after the call; the campaign judges the compiled run's
state after the call against it (``fuzz.campaign.session``). A write node carries
``extra["writes"] = x``: the generator's interpreter (``fuzz.gen.interpret.run_node``) calls it on a
copy of ``x``, so the leaves the value search draws stay as drawn, while the program writes the real
buffer or input. Every rewrite is called on zero tensors of the solved shapes and kept only if it
returns what the graph says.
"""

from __future__ import annotations

from fuzz.gen.chooser import Chooser
from fuzz.ir.graph import Graph, Node, replace_refs, written_state

FLOATS = ("float32", "float64", "float16", "bfloat16")
MOMENTUM = 0.1  # the running statistic's lerp weight
INPUT_WRITES = ("add_", "mul_", "add_value", "index_put_", "custom_op")


def _zeros(info):
    import torch

    from fuzz.ir.record import dtype_from_name

    return torch.zeros(info.shape, dtype=dtype_from_name(info.dtype))


def run_on_zeros(g: Graph, nodes: list[Node], check: bool = True) -> dict | None:
    """Every value of ``nodes`` run in order on zero tensors of the solved shapes (with ``check``,
    each output must have the graph's shape and dtype), or None when a call fails. What a node
    learns here about how its result unpacks (``extra["returns"]``) is forgotten again."""
    import torch

    from fuzz.gen.interpret import run_graph

    part = Graph()
    part.tensors, part.nodes = g.tensors, nodes
    made = {o for n in nodes for o in n.outputs}
    leaves = {t: _zeros(g.tensors[t]) for n in nodes for t in n.inputs() if t not in made}
    learnt = [n for n in nodes if "returns" not in n.extra]
    try:
        with torch.no_grad():
            return run_graph(part, leaves, {}, check=check)
    except Exception:  # noqa: BLE001 (any failure: nothing can be told, the rewrite is not kept)
        return None
    finally:
        for n in learnt:
            n.extra.pop("returns", None)


def _call(g: Graph, op: str, args: list, kwargs: dict, shape, dtype: str, stem: str) -> Node:
    """A function call node with one new output; its id is its output's name (unique in the graph)."""
    name = g.add_tensor(shape, dtype, "value", name=g.fresh_name(stem))
    return Node(id=name, op=op, api="function", args=args, kwargs=kwargs, outputs=[name])


def _reads_instead(g: Graph, nodes: list[Node], old: str, new: str) -> None:
    for n in nodes:
        n.args = replace_refs(n.args, {old: new})
        n.kwargs = {k: replace_refs(v, {old: new}) for k, v in n.kwargs.items()}
    g.outputs = [new if o == old else o for o in g.outputs]


def _note(g: Graph, state: str, value: str) -> None:
    g.meta.setdefault("writes", []).append({"state": state, "value": value})


def _drop_new(g: Graph, names) -> None:
    for t in names:
        g.tensors.pop(t, None)


def rewrite_buffer(g: Graph, i: int, ch: Chooser) -> bool:
    """A running-mean buffer of the first float input node ``i`` reads, updated at the start of
    ``forward`` (see the module docstring)."""
    node = g.nodes[i]
    xs = [t for t in dict.fromkeys(node.inputs()) if g.tensors[t].role == "input" and g.tensors[t].dtype in FLOATS
          and g.tensors[t].shape and all(d > 0 for d in g.tensors[t].shape)]
    written = {s for s, _ in written_state(g)}
    xs = [x for x in xs if x not in written]
    if not xs:
        return False
    x = xs[0]
    xi = g.tensors[x]
    shape, dtype = list(xi.shape[1:]), xi.dtype
    running = g.add_tensor(shape, dtype, "param", name=g.fresh_name("running"))
    mean = _call(g, "torch.mean", [{"ref": x}], {"dim": 0}, shape, dtype, "mean")
    stat = _call(g, "torch.Tensor.detach", [{"ref": mean.outputs[0]}], {}, shape, dtype, "stat")
    update = _call(g, "torch.Tensor.lerp_", [{"ref": running}, {"ref": stat.outputs[0]}, MOMENTUM], {}, shape, dtype,
                   "running")
    centred = _call(g, "torch.sub", [{"ref": x}, {"ref": update.outputs[0]}], {}, xi.shape, dtype, "centred")
    added = [mean, stat, update, centred]
    steps = None
    if ch.chance(0.5):
        steps = g.add_tensor([], "int64", "param", name=g.fresh_name("steps"))
        added.append(_call(g, "torch.Tensor.add_", [{"ref": steps}, 1], {}, [], "int64", "steps"))
        added[-1].extra["writes"] = steps
    update.extra["writes"] = running
    for n in added:
        n.extra["form"] = "buffer"
    if run_on_zeros(g, added) is None:
        _drop_new(g, [running, steps] + [o for n in added for o in n.outputs])
        return False
    later = list(g.nodes)
    g.nodes[0:0] = added
    _reads_instead(g, later, x, centred.outputs[0])
    g.meta["buffers"] = g.meta.get("buffers", []) + [running] + ([steps] if steps else [])
    _note(g, running, update.outputs[0])
    if steps:
        _note(g, steps, added[-1].outputs[0])
        g.outputs.append(added[-1].outputs[0])
    return True


def _aliases_before(g: Graph, x: str, upto: int) -> bool:
    """Whether a value made by the first ``upto`` nodes shares the storage of the input ``x`` (or
    they fail on zero tensors, so nothing can be told)."""
    import torch

    env = run_on_zeros(g, g.nodes[:upto], check=False)
    if env is None:
        return True
    if x not in env:  # no node before the write reads x
        return False
    base = env[x].untyped_storage().data_ptr()
    return any(isinstance(v, torch.Tensor) and k != x and v.untyped_storage().data_ptr() == base
               for k, v in env.items())


def rewrite_input_write(g: Graph, i: int, ch: Chooser) -> bool:
    """An in-place write into a graph input right after node ``i`` (see the module docstring)."""
    written = {s for s, _ in written_state(g)}
    xs = [t for t in g.inputs if t not in written and g.tensors[t].shape and all(d > 0 for d in g.tensors[t].shape)
          and g.tensors[t].dtype in FLOATS + ("int64", "int32")
          and any(t in n.inputs() for n in g.nodes[i + 1:])]
    if not xs or any(n.api == "module" for n in g.nodes[:i + 1]):
        return False
    x = ch.choice(xs)
    xi = g.tensors[x]
    kind = ch.choice(INPUT_WRITES)
    new_inputs: list[str] = []
    if kind == "add_value":
        made = [o for n in g.nodes[:i + 1] for o in n.outputs
                if (g.tensors[o].shape, g.tensors[o].dtype) == (xi.shape, xi.dtype)]
        kind = "add_" if not made else kind
    if kind == "custom_op" and xi.dtype not in FLOATS:
        kind = "add_"
    if kind == "custom_op":
        write = _custom_write(g, x, ch)
    elif kind == "add_value":
        args = [{"ref": x}, {"ref": ch.choice(made)}]
        op = "torch.Tensor.add_"
    elif kind == "index_put_":
        idx = g.add_tensor([max(1, xi.shape[0] // 2)], "int64", "input", name=g.fresh_name("idx"))
        val = g.add_tensor([], xi.dtype, "input", name=g.fresh_name("val"))
        new_inputs = [idx, val]
        args = [{"ref": x}, [{"ref": idx}], {"ref": val}, ch.chance(0.5)]
        op = "torch.Tensor.index_put_"
    else:
        if kind == "mul_" and xi.dtype not in FLOATS:
            kind = "add_"
        scalar = ch.choice([0.5, -1.5, 2.0]) if xi.dtype in FLOATS else ch.choice([1, -2, 3])
        args = [{"ref": x}, scalar]
        op = f"torch.Tensor.{kind}"
    if kind != "custom_op":
        write = _call(g, op, args, {}, xi.shape, xi.dtype, "written")
    write.extra.update({"form": "input_write", "writes": x})
    if _aliases_before(g, x, i + 1) or run_on_zeros(g, [write]) is None:
        _drop_new(g, new_inputs + write.outputs)
        return False
    later = g.nodes[i + 1:]
    g.nodes.insert(i + 1, write)
    _reads_instead(g, later, x, write.outputs[0])
    _note(g, x, write.outputs[0])
    return True


def _custom_write(g: Graph, x: str, ch: Chooser) -> Node:
    """A ``fuzz.gen.custom_ops`` call writing the input ``x``, or views of it made on the same line
    (``torch.narrow(x_0, 0, 1, 2)``: a write through a view of an input); it returns nothing, so
    its node's output is ``x`` after the write (``extra["written_result"]``: the program writes
    ``written_5 = x_0`` on the next line, the interpreter returns its copy of ``x``)."""
    xi = g.tensors[x]

    def narrow(start: int, length: int, d: int) -> dict:
        return {"call": "torch.narrow", "args": [{"ref": x}, d, start, length]}

    long_dims = [d for d, n in enumerate(xi.shape) if n >= 2]
    if long_dims and ch.chance(0.5):  # two disjoint halves of one dim, written by one call
        d = ch.choice(long_dims)
        half = xi.shape[d] // 2
        op, args = "assay::mix_", [narrow(0, half, d), narrow(xi.shape[d] - half, half, d), ch.choice((0.25, 0.5, 1.0))]
    else:
        target = {"ref": x}
        if long_dims and ch.chance(0.6):
            d = ch.choice(long_dims)
            start = ch.integer(0, xi.shape[d] - 1)
            target = narrow(start, ch.integer(1, xi.shape[d] - start), d)
        op, args = "assay::scale_shift_", [target, ch.choice((0.5, -1.5, 2.0)), ch.choice((0.25, -1.0, 7.5))]
    name = g.add_tensor(list(xi.shape), xi.dtype, "value", name=g.fresh_name("written"))
    return Node(id=name, op=op, api="aten", overload="default", args=args, kwargs={}, outputs=[name],
                extra={"written_result": True, "custom_op": op.partition("::")[2]})


STATE_REWRITES = {"buffer": rewrite_buffer, "input_write": rewrite_input_write}
