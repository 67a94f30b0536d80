"""Program forms (``ModelPolicy.form == "forms"``): rewrites of a solved graph into the forms
compilers must functionalise, each an ordinary operator call on one readable line.

``apply_forms(graph, chooser)`` rewrites a few nodes of a graph the rules built (before values are
drawn: the guard run and the value search then check the rewritten graph like any other) and
records what it did in ``graph.meta["forms"]``:

- ``inplace``: ``y = f(a, ...)`` becomes ``c = torch.clone(a)``; ``y = f_(c, ...)`` (the aten
  in-place overload, ``torch.Tensor.f_``, or ``inplace=True``), where the functional rule's output
  has ``a``'s shape and dtype (the in-place variant's shape rule is the functional one's). Half the
  time the later readers of ``a`` read ``c`` instead: they see the mutated tensor.
- ``out``: ``y = f(a, ...)`` becomes ``buf = torch.zeros_like(t, dtype=...)``;
  ``y = f(a, ..., out=buf)`` (the aten ``out`` overload of the same arguments, or the function's
  ``out=``); ``buf`` is a zero-element tensor that ``out=`` resizes when no tensor of the output's
  shape exists.
- ``view_write``: after the node that makes a float tensor ``a``: ``c = torch.clone(a)``; ``v =``
  a view of ``c`` (select, slice, transpose, diagonal, narrow); ``w = `` an in-place write into
  ``v`` (add_/mul_/fill_/clamp_/relu_/neg_, or ``scatter_``/``index_put_`` with an int64 index
  input); every later reader of ``a`` reads ``c``: the write through the view must show in them.
- ``checkpoint``: ``y = f(args)`` becomes ``y = torch.utils.checkpoint.checkpoint(f, args,
  use_reentrant=False)`` (a function reference is the encoded value ``{"fn": name}``).
- ``cond``: a new node ``y = torch.cond(p, torch.sin, torch.cos, (a,))`` on a float tensor ``a``
  with a new 0-dim bool input ``p``, the branches a pair of elementwise functions.
- ``vmap``/``grad``/``jacrev``/``jacfwd`` (the ``transform`` rewrite): a new node
  ``y = operator.call(torch.vmap(torch.sum, in_dims=1), a)`` (or ``torch.func.grad(f)``...) on a
  float tensor ``a``; the function made by the transform is the encoded value
  ``{"call": "torch.vmap", "args": [{"fn": "torch.sum"}], "kwargs": {...}}``; ``hessian`` the same
  way (``torch.func.hessian(torch.var)``), and ``jvp`` as a call of two outputs:
  ``y, dy = torch.func.jvp(torch.tanh, (a,), (a,))`` (the value and the derivative along ``a``).

- ``buffer``/``input_write`` (``fuzz.gen.state_forms``): a registered buffer updated in place in
  ``forward`` (a running mean, a step counter) and read after, or a graph input written in place;
  ``graph.meta["writes"]`` names them and the campaign judges them after every call.

Every rewrite is first called on zero tensors of the solved shapes and kept only if it returns
what the graph says. Apart from the state forms, writes go into clones of graph values, never into
graph inputs or parameters. Not covered (docs/generator.md): vjp (it returns a function), transforms
of a chain of graph nodes, autocast regions around more than one call, unbacked sizes fed to shape
arguments.
- ``hop`` (``fuzz.gen.hop_forms``): a higher-order operator after a node making a float tensor:
  ``scan`` with a recurrence step, ``associative_scan``, ``map``, ``while_loop`` with a fixed trip
  count, or ``flex_attention`` with a score modification; its functions are torch functions or
  ``fuzz.gen.hop_fns``, whose source the program carries.
- ``custom_op`` (``fuzz.gen.custom_op_forms``): a ``torch.library.custom_op`` operator of
  ``fuzz.gen.custom_ops`` after a node making a float tensor: one that writes into a clone of it
  or into views of the clone (``scale_shift_``, ``mix_`` on two disjoint views, ``accumulate``,
  which also returns a tensor), or a functional one with a backward formula (``soft_threshold``).
- ``datadep`` (``fuzz.gen.datadep``): after a node making ``a``, a chain whose middle has a size or
  scalar only the values decide and whose end has a static shape (a new graph output):
  ``torch.nonzero``/``torch.argwhere`` of ``torch.gt(a, t)`` then ``torch.sum(idx, 0)``;
  ``torch.masked_select`` then a sum; ``torch.unique(k, sorted=True)`` then a sum; or
  ``torch.Tensor.item`` of a 0-dim tensor inside the next call's arguments. The graph records the
  dynamo capture flags compiling them needs in ``graph.meta["compile_settings"]``; ``graph.meta
  ["forms"]`` names the call (``nonzero``, ``masked_select``...).
- ``autocast``: the call of a node with a float32 operand runs in an autocast region
  (``extra["autocast"]`` = bfloat16 or float16: the program writes ``with torch.autocast(
  device_type=x.device.type, dtype=torch.bfloat16):`` above its line; matmul/conv/linear run in the
  lower precision, the ops autocast widens in float32), kept only where the outputs keep the
  graph's dtypes or are read by nothing (then they take autocast's dtype). Written as a region,
  not as ``torch.autocast(...)(f)``: dynamo 2.13 fails an internal assertion on the decorator
  form of a torch function ("expected a function variable, got LazyVariableTracker").

After its rewrites, half of the forms models also get a graph break (``add_graph_break``): the line
``torch._dynamo.graph_break()`` after a node (``extra["graph_break"]``) whose outputs, or an
earlier node's, are read after it. Eager ignores it; dynamo compiles the calls above it and the
calls below it as separate graphs and runs the Python between them, so the tensors crossing the
break (views, values written in place, outputs of a form) leave one compiled graph and enter the
next, and a backward runs through both. ``graph.meta["forms"]`` then ends with ``graph_break``.
"""

from __future__ import annotations

from fuzz.gen.chooser import Chooser
from fuzz.gen.custom_op_forms import rewrite_custom_op
from fuzz.gen.datadep import rewrite_datadep
from fuzz.gen.graph_edits import read_later, solved_view
from fuzz.gen.hop_forms import rewrite_hop
from fuzz.gen.state_forms import STATE_REWRITES
from fuzz.ir.graph import Graph, Node
from fuzz.ir.opnames import COND_OP, last_component

FORMS = ("inplace", "out", "view_write", "checkpoint", "cond", "transform", "autocast", "datadep", "hop",
         "custom_op") + tuple(STATE_REWRITES)
UNARY_PAIRS = ("sin", "cos", "tanh", "sigmoid", "neg", "abs", "exp", "relu", "square", "atan")
WRITES = ("add_", "mul_", "fill_", "clamp_", "relu_", "neg_", "scatter_", "index_put_")


def _zeros(info):
    import torch

    from fuzz.ir.record import dtype_from_name

    return torch.zeros(info.shape, dtype=dtype_from_name(info.dtype))


def _check(g: Graph, nodes: list, extra: dict | None = None) -> bool:
    """Run ``nodes`` in order on zero tensors of the solved shapes; True when every output has
    the shape and dtype the graph gives it."""
    from fuzz.gen.interpret import check_outputs, run_node

    env = dict(extra or {})
    try:
        for n in nodes:
            for t in n.inputs():
                if t not in env:
                    env[t] = _zeros(g.tensors[t])
            outs = run_node(n, env, {})
            check_outputs(g, n, outs)
            env.update(outs)
    except Exception:  # noqa: BLE001 (any failure: the rewrite is not kept)
        return False
    finally:
        for n in nodes:
            n.extra.pop("returns", None)
    return True


def _first_ref(node: Node) -> str | None:
    a = node.args[0] if node.args else None
    return a["ref"] if isinstance(a, dict) and "ref" in a else None


def _new_node(g: Graph, op: str, args: list, kwargs: dict, out_like, stem: str, api: str = "function",
              overload: str | None = None) -> Node:
    name = g.fresh_name(stem)
    g.add_tensor(out_like.shape, out_like.dtype, "value", name=name)
    return Node(id=g.new_node_id(), op=op, api=api, overload=overload, args=args, kwargs=kwargs, outputs=[name],
                kind="symbolic")


def _aten_packet(op: str):
    import torch

    ns, _, name = op.partition("::")
    return getattr(getattr(torch.ops, ns, None), name, None)


def _inplace_target(node: Node) -> dict | None:
    """How to call ``node`` in place: the node fields to change, or None."""
    import torch

    if node.api == "aten":
        packet = _aten_packet(node.op + "_")
        if packet is not None and (node.overload or "default") in packet.overloads():
            return {"op": node.op + "_"}
        return None
    if node.api != "function":
        return None
    last = last_component(node.op)
    if node.op.startswith("torch.nn.functional.") and "inplace" not in node.kwargs:
        import inspect

        try:
            if "inplace" in inspect.signature(getattr(torch.nn.functional, last)).parameters:
                return {"kwargs": {**node.kwargs, "inplace": True}}
        except (TypeError, ValueError, AttributeError):
            pass
    if hasattr(torch.Tensor, last + "_") and not last.startswith("_"):
        return {"op": f"torch.Tensor.{last}_"}
    return None


def _rewrite_inplace(g: Graph, i: int, ch: Chooser) -> bool:
    node = g.nodes[i]
    a = _first_ref(node)
    if a is None or len(node.outputs) != 1:
        return False
    ai, oi = g.tensors[a], g.tensors[node.outputs[0]]
    if (ai.shape, ai.dtype) != (oi.shape, oi.dtype):
        return False
    how = _inplace_target(node)
    if how is None:
        return False
    clone = _new_node(g, "torch.clone", [{"ref": a}], {}, ai, "clone")
    c = clone.outputs[0]
    new = Node(id=node.id, op=how.get("op", node.op), api=node.api, overload=node.overload,
               args=[{"ref": c}] + list(node.args[1:]), kwargs=how.get("kwargs", dict(node.kwargs)),
               outputs=list(node.outputs), kind=node.kind, init=node.init, rule=node.rule,
               extra={"form": "inplace"})
    if not _check(g, [clone, new]):
        del g.tensors[c]
        return False
    g.nodes[i:i + 1] = [clone, new]
    if ch.chance(0.5):
        read_later(g, i + 2, a, c)
    return True


def _out_overload(node: Node) -> str | None:
    """The aten overload that takes ``node``'s arguments plus ``out``."""
    packet = _aten_packet(node.op)
    if packet is None:
        return None
    try:
        names = [a.name for a in getattr(packet, node.overload or "default")._schema.arguments]
        for ov in packet.overloads():
            args = getattr(packet, ov)._schema.arguments
            if [a.name for a in args if a.name != "out"] == names and any(
                    a.name == "out" and a.alias_info is not None and a.alias_info.is_write for a in args):
                return ov
    except Exception:  # noqa: BLE001
        return None
    return None


def _rewrite_out(g: Graph, i: int, ch: Chooser) -> bool:
    node = g.nodes[i]
    if len(node.outputs) != 1 or node.api == "module" or "out" in node.kwargs:
        return False
    out = node.outputs[0]
    oi = g.tensors[out]
    overload = node.overload
    if node.api == "aten":
        overload = _out_overload(node)
        if overload is None:
            return False
    same = [t for t in dict.fromkeys(node.inputs()) if g.tensors[t].shape == oi.shape]
    if same:
        buf = _new_node(g, "torch.zeros_like", [{"ref": ch.choice(same)}], {"dtype": {"dtype": oi.dtype}}, oi, "buf")
    else:
        anchor = node.inputs()[0] if node.inputs() else None
        if anchor is None:
            return False
        buf = _new_node(g, "torch.Tensor.new_zeros", [{"ref": anchor}, [0]], {"dtype": {"dtype": oi.dtype}}, oi, "buf")
        g.tensors[buf.outputs[0]].shape = [0]
    new = Node(id=node.id, op=node.op, api=node.api, overload=overload, args=list(node.args),
               kwargs={**node.kwargs, "out": {"ref": buf.outputs[0]}}, outputs=[out], kind=node.kind,
               init=node.init, rule=node.rule, extra={"form": "out"})
    if not _check(g, [buf, new]):
        del g.tensors[buf.outputs[0]]
        return False
    g.nodes[i:i + 1] = [buf, new]
    return True


def _rewrite_view_write(g: Graph, i: int, ch: Chooser) -> bool:
    """After node ``i``: clone its first float output, write into a view of the clone, and let
    every later reader of the output read the clone."""
    node = g.nodes[i]
    outs = [o for o in node.outputs if g.tensors[o].dtype in ("float32", "float64", "float16", "bfloat16")
            and g.tensors[o].shape and all(d > 0 for d in g.tensors[o].shape)]
    if not outs:
        return False
    a = outs[0]
    ai = g.tensors[a]
    view = solved_view(ch, ai)
    if view is None:
        return False
    op, ov, ints, vshape = view
    clone = _new_node(g, "torch.clone", [{"ref": a}], {}, ai, "clone")
    c = clone.outputs[0]
    v = _new_node(g, op, [{"ref": c}] + ints, {}, ai, "view", api="aten", overload=ov)
    g.tensors[v.outputs[0]].shape = vshape
    vi = g.tensors[v.outputs[0]]
    write = ch.choice(WRITES)
    extra_nodes = []
    args: list = [{"ref": v.outputs[0]}]
    overload = "default"
    if write in ("add_", "mul_", "fill_"):
        overload = "Scalar"
        args.append(ch.choice([0.5, -1.5, 2.0]))
    elif write == "clamp_":
        args += [-0.5, 0.5]
    elif write in ("scatter_", "index_put_") and vshape:
        idx = g.add_tensor(vshape if write == "scatter_" else [max(1, vshape[0] // 2)], "int64", "input",
                           name=g.fresh_name("idx"))
        if write == "scatter_":
            overload = "value"
            args += [ch.integer(0, len(vshape) - 1), {"ref": idx}, ch.choice([1.0, -2.0])]
        else:
            val = g.add_tensor([], ai.dtype, "input", name=g.fresh_name("val"))
            args += [[{"ref": idx}], {"ref": val}, ch.chance(0.5)]
    elif write in ("scatter_", "index_put_"):
        write, overload = "neg_", "default"
    w = _new_node(g, "aten::" + write, args, {}, vi, "write", api="aten", overload=overload)
    w.extra["form"] = "view_write"
    added = [clone, v, *extra_nodes, w]
    if not _check(g, added, extra={t: _index_zeros(g, t) for t in w.inputs() if g.tensors[t].dtype == "int64"}):
        for n in added:
            for o in n.outputs:
                g.tensors.pop(o, None)
        for t in w.inputs():
            if g.tensors.get(t) is not None and g.tensors[t].role == "input" and not any(t in n.inputs() for n in g.nodes):
                del g.tensors[t]
        return False
    g.nodes[i + 1:i + 1] = added
    read_later(g, i + 1 + len(added), a, c)
    if a in g.outputs or not any(a in n.inputs() for n in g.nodes[i + 1 + len(added):]):
        g.outputs = [o for o in g.outputs if o != a] + ([c] if c not in g.outputs else [])
    g.outputs.append(w.outputs[0])
    return True


def _index_zeros(g: Graph, name: str):
    return _zeros(g.tensors[name])


def _rewrite_checkpoint(g: Graph, i: int, ch: Chooser) -> bool:
    node = g.nodes[i]
    if node.api not in ("function", "aten") or "use_reentrant" in node.kwargs:
        return False
    fn = {"fn": node.op, "api": node.api, "overload": node.overload} if node.api == "aten" else {"fn": node.op}
    new = Node(id=node.id, op="torch.utils.checkpoint.checkpoint", api="function", args=[fn] + list(node.args),
               kwargs={**node.kwargs, "use_reentrant": False}, outputs=list(node.outputs), kind=node.kind,
               rule=node.rule, extra={"form": "checkpoint"})
    if not _check(g, [new]):
        return False
    g.nodes[i] = new
    return True


def _rewrite_cond(g: Graph, i: int, ch: Chooser) -> bool:
    """A ``torch.cond`` on the first float output of node ``i``, placed right after it."""
    node = g.nodes[i]
    outs = [o for o in node.outputs if g.tensors[o].dtype in ("float32", "float64")]
    if not outs:
        return False
    a = outs[0]
    f, h = ch.choice(UNARY_PAIRS), ch.choice(UNARY_PAIRS)
    pred = g.add_tensor([], "bool", "input", name=g.fresh_name("pred"))
    cond = _new_node(g, COND_OP, [{"ref": pred}, {"fn": f"torch.{f}"}, {"fn": f"torch.{h}"}, {"tuple": [{"ref": a}]}],
                     {}, g.tensors[a], "cond")
    cond.extra["form"] = "cond"
    if not _check(g, [cond]):
        del g.tensors[pred], g.tensors[cond.outputs[0]]
        return False
    g.nodes.insert(i + 1, cond)
    g.outputs.append(cond.outputs[0])
    return True


# torch.func transforms and the functions they take (an input slice, a float tensor).
TRANSFORMS = {
    "vmap": ("torch.sum", "torch.mean", "torch.sin", "torch.linalg.vector_norm", "torch.trace", "torch.amax",
             "torch.prod"),
    "grad": ("torch.sum", "torch.mean", "torch.linalg.vector_norm", "torch.std", "torch.var", "torch.prod"),
    "jacrev": ("torch.sin", "torch.tanh", "torch.sigmoid", "torch.exp", "torch.square"),
    "jacfwd": ("torch.sin", "torch.tanh", "torch.sigmoid", "torch.exp", "torch.square"),
    # not std / vector_norm: eager's backward through their hessian fails ("modified by an inplace
    # operation", MaskedFill in their double backward), so every bwd test of them is invalid
    "hessian": ("torch.var", "torch.prod", "torch.mean"),
    "jvp": ("torch.sin", "torch.tanh", "torch.sigmoid", "torch.exp", "torch.square", "torch.erf"),
}
JACOBIAN_MAX_NUMEL = 256  # a Jacobian has numel**2 elements


def _rewrite_transform(g: Graph, i: int, ch: Chooser) -> bool:
    """``y = operator.call(torch.vmap(f, in_dims=d), a)`` (or ``torch.func.grad/jacrev/jacfwd(f)``)
    on the first float output ``a`` of node ``i``, placed right after it."""
    import torch

    from fuzz.gen.interpret import run_node

    node = g.nodes[i]
    outs = [o for o in node.outputs if g.tensors[o].dtype in ("float32", "float64") and g.tensors[o].shape]
    if not outs:
        return False
    a = outs[0]
    ai = g.tensors[a]
    kind = ch.choice(sorted(TRANSFORMS))
    if kind in ("jacrev", "jacfwd", "hessian") and ai.numel > JACOBIAN_MAX_NUMEL:
        return False
    fn = {"fn": ch.choice(TRANSFORMS[kind])}
    if kind == "jvp":  # (f(a), the derivative of f at a in the direction a): two outputs
        op, args, n_out = "torch.func.jvp", [fn, {"tuple": [{"ref": a}]}, {"tuple": [{"ref": a}]}], 2
    else:
        if kind == "vmap":
            made = {"call": "torch.vmap", "args": [fn], "kwargs": {"in_dims": ch.integer(0, len(ai.shape) - 1)}}
        else:
            made = {"call": f"torch.func.{kind}", "args": [fn], "kwargs": {}}
        op, args, n_out = "operator.call", [made, {"ref": a}], 1
    probe = Node(id="probe", op=op, api="function", args=args, kwargs={}, outputs=[f"y{k}" for k in range(n_out)])
    try:
        got = run_node(probe, {a: _zeros(ai)}, {})
    except Exception:  # noqa: BLE001 (the function does not take this slice: vmap of trace over a vector)
        return False
    ys = [got.get(f"y{k}") for k in range(n_out)]
    if not all(isinstance(y, torch.Tensor) for y in ys):
        return False
    from fuzz.ir.record import dtype_name
    from fuzz.ir.graph import TensorInfo

    call = _new_node(g, op, args, {}, TensorInfo(list(ys[0].shape), dtype_name(ys[0].dtype)), kind)
    for y in ys[1:]:
        call.outputs.append(g.add_tensor(list(y.shape), dtype_name(y.dtype), "value", name=g.fresh_name(kind)))
    call.extra["form"] = kind
    if n_out > 1:  # a tuple of tensors, unpacked on the program's line
        call.extra["returns"] = list(call.outputs)
    g.nodes.insert(i + 1, call)
    g.outputs.extend(call.outputs)
    return True


AUTOCAST_DTYPES = ("bfloat16", "float16")


def _rewrite_autocast(g: Graph, i: int, ch: Chooser) -> bool:
    """Node ``i`` (a call with a float32 operand) run inside an autocast region (``extra["autocast"]``:
    the program writes ``with torch.autocast(device_type=..., dtype=...):`` around its line)."""
    import torch

    from fuzz.gen.interpret import run_node
    from fuzz.ir.record import dtype_name

    node = g.nodes[i]
    if "form" in node.extra or not any(g.tensors[t].dtype == "float32" for t in node.inputs()):
        return False
    region = ch.choice(AUTOCAST_DTYPES)
    node.extra.update({"form": "autocast", "autocast": region})
    submodules = {}
    if node.api == "module":
        from fuzz.gen.interpret import build_submodules

        one = Graph()
        one.tensors, one.nodes = g.tensors, [node]
        try:
            submodules = build_submodules(one)
        except Exception:  # noqa: BLE001
            submodules = None
    try:
        if submodules is None:
            raise ValueError("no submodule")
        outs = run_node(node, {t: _zeros(g.tensors[t]) for t in node.inputs()}, submodules)
        consumed = {t for n in g.nodes for t in n.inputs()}
        changed = {}
        for name in node.outputs:
            y = outs.get(name)
            if not isinstance(y, torch.Tensor) or list(y.shape) != list(g.tensors[name].shape):
                raise ValueError("shape")
            if dtype_name(y.dtype) != g.tensors[name].dtype:
                if name in consumed:
                    raise ValueError("a later reader's rule was solved for the graph's dtype")
                changed[name] = dtype_name(y.dtype)
    except Exception:  # noqa: BLE001 (the call does not run in the region as the graph needs: not rewritten)
        for k in ("form", "autocast", "returns"):
            node.extra.pop(k, None)
        return False
    node.extra.pop("returns", None)
    for name, dt in changed.items():
        g.tensors[name].dtype = dt
    return True


REWRITES = {"autocast": _rewrite_autocast, "inplace": _rewrite_inplace, "out": _rewrite_out, "view_write": _rewrite_view_write,
            "checkpoint": _rewrite_checkpoint, "cond": _rewrite_cond, "transform": _rewrite_transform,
            "datadep": rewrite_datadep, "hop": rewrite_hop, "custom_op": rewrite_custom_op, **STATE_REWRITES}


GRAPH_BREAK_CHANCE = 0.5


def add_graph_break(g: Graph, ch: Chooser) -> bool:
    """Mark one node after which the program breaks dynamo's graph (``extra["graph_break"]``),
    at a place some tensor made at or before it is read after it; False when there is none."""
    made: set[str] = set()
    places = []
    for k, node in enumerate(g.nodes[:-1]):
        made.update(node.outputs)
        crossing = made & {t for n in g.nodes[k + 1:] for t in n.inputs()}
        if crossing and not node.extra.get("graph_break"):
            places.append(k)
    if not places:
        return False
    g.nodes[ch.choice(places)].extra["graph_break"] = True
    return True


def _used_name(g: Graph, i: int, form: str) -> str:
    """How ``g.meta["forms"]`` names a rewrite at node ``i``: the transform or data-dependent call
    it placed (``vmap``, ``nonzero``...), else the form."""
    if form == "transform":
        return g.nodes[i + 1].extra["form"]
    if form == "datadep":
        return next(n.extra["datadep"] for n in g.nodes[i + 1:] if "datadep" in n.extra)
    if form == "hop":
        return next(n.extra["form"] for n in g.nodes[i + 1:] if n.extra.get("hop"))
    if form == "custom_op":
        return next(n.extra["custom_op"] for n in g.nodes[i + 1:] if "custom_op" in n.extra)
    if form == "input_write" and "custom_op" in g.nodes[i + 1].extra:
        return "custom_input_write"
    return form


def apply_forms(g: Graph, ch: Chooser, count: int = 2) -> list[str]:
    """Rewrite up to ``count`` nodes of ``g`` into program forms (see the module docstring); the
    forms used, in order, also stored in ``g.meta["forms"]``."""
    used: list[str] = []
    tries = 0
    while len(used) < count and tries < 4 * count and g.nodes:
        tries += 1
        form = ch.choice(FORMS)
        candidates = [k for k, n in enumerate(g.nodes) if "form" not in n.extra]
        if not candidates:
            break
        for _ in range(min(6, len(candidates))):
            i = ch.choice(candidates)
            if REWRITES[form](g, i, ch):
                used.append(_used_name(g, i, form))
                break
            candidates.remove(i)
    if g.nodes and ch.chance(GRAPH_BREAK_CHANCE) and add_graph_break(g, ch):
        used.append("graph_break")
    g.meta["forms"] = used
    return used
