"""Higher-order operators as program forms (the ``hop`` rewrite of ``fuzz.gen.forms``).

After a node making a float tensor ``a`` (rank >= 1), one of these calls is placed, each on one
line of the program, its function a torch function or one of ``fuzz.gen.hop_fns`` (pasted into the
program):

- ``scan``: ``carry, ys = scan(scan_decay, init, a, dim=d, reverse=r)`` with ``init`` a new input
  of ``a``'s shape without dim ``d`` (a recurrence over one dim: what RNN-like models compile to);
  the loops (scan, associative_scan, map) run over a dim of at most ``MAX_STEPS`` elements;
- ``associative_scan``: ``y = associative_scan(torch.logaddexp, a, d, reverse=r,
  combine_mode="generic")`` (add, mul, maximum, minimum, logaddexp; "pointwise" needs CUDA);
- ``map``: ``y = map(torch.tanh, a)`` over ``a``'s first dim (a unary torch function or a helper
  that normalises the slice);
- ``while_loop``: ``i, x = while_loop(loop_below_three, loop_sin_step, (i0, a))`` with ``i0 =
  torch.zeros([], dtype=torch.int64)`` on the line above (a fixed trip count, never an input that
  an edge value could make huge);
- ``flex_attention``: on ``a`` as ``[batch, heads, length, head dim]`` (a rank-2 or rank-3 ``a``
  reshaped with leading 1s on the line above; a rank-4 ``a`` sometimes permuted, a channels-first
  feature map ``[B, E, H, L]`` read as ``[B, H, L, E]``): ``y = flex_attention(q, k, v,
  score_mod=score_causal)`` with ``k`` and ``v`` new inputs of that shape, the score modification
  one of ``fuzz.gen.hop_fns.SCORE_MODS`` or none.

Each call is first run on zero tensors and kept only when it runs; its outputs (shapes and dtypes
from that run) become graph outputs, and half the time, where one has ``a``'s shape and dtype, the
later readers of ``a`` read it instead (what follows an operator is fused into it: the CPU
flex_attention template failed every pointwise op after it, docs/bugs-found.md, seventeenth session). The node's ``extra["form"]`` names the operator and
``graph.meta["forms"]`` lists it.
"""

from __future__ import annotations

from fuzz.gen import hop_fns
from fuzz.gen.chooser import Chooser
from fuzz.gen.graph_edits import read_later
from fuzz.gen.state_forms import run_on_zeros
from fuzz.ir.graph import Graph, Node

OPS = {kind: op for kind, (op, _, _) in hop_fns.HOPS.items()}  # the graph node's op
HOPS = tuple(OPS)
RESULTS = {"scan": 2, "while_loop": 2}  # tensors a call returns (a tuple); else one tensor
ASSOCIATIVE = ("torch.add", "torch.mul", "torch.maximum", "torch.minimum", "torch.logaddexp")
MAP_TORCH_FNS = ("torch.tanh", "torch.sin", "torch.exp", "torch.sigmoid", "torch.square")
FLOATS = ("float32", "float64", "float16", "bfloat16")
# At most this many steps for a loop over a dim (scan, associative_scan, map): a loop's steps are
# Python calls in the generator's eager equivalents and in the compiled wrapper's loop alike (a
# scan over 4,096 steps made generation 1.3x slower over 600 models), and RNN-like models scan tens.
MAX_STEPS = 32
# Inductor rewrites scan (and map, through scan) into a while_loop whose body calls .item(): under
# the default settings every such program fails to compile (docs/bugs-found.md, sixteenth session).
# Half of the scan and map models set the flag that lets it through (recorded in graph.meta
# ["compile_settings"], set by the campaign and by repro.py, as for fuzz.gen.datadep), so the
# lowering behind that failure is tested too; the other half keep testing the default.
LOWERING_SETTINGS = {"dynamo.capture_scalar_outputs": True}
PERMUTED_QUERY_SHARE = 0.3  # rank-4 flex_attention queries read through a permute (not contiguous)
CAPTURE_SHARE = 0.5
READ_LATER_SHARE = 0.5  # calls whose result, where it has a's shape and dtype, later readers of a read
FLEX_FLOATS = ("float32", "float16", "bfloat16")


def _fn(name: str) -> dict:
    return {"fn": hop_fns.PREFIX + name}


def _query_view(g: Graph, a: str, op: str, arg: list, shape: list) -> Node:
    """``query = op(a, arg)``, a new node (not yet placed) giving flex_attention its 4-d query."""
    q = g.add_tensor(shape, g.tensors[a].dtype, "value", name=g.fresh_name("query"))
    return Node(id=g.new_node_id(), op=op, api="function", args=[{"ref": a}, arg], kwargs={}, outputs=[q],
                kind="symbolic", extra={"form": "attention_heads"})


def _call(g: Graph, kind: str, a: str, ch: Chooser) -> tuple[list, dict, list[Node]] | None:
    """(args, kwargs, nodes to place before the call) of a ``kind`` call on ``a``; None if it does not fit."""
    info = g.tensors[a]
    rank = len(info.shape)
    short = [d for d, n in enumerate(info.shape) if n <= MAX_STEPS]  # dims a loop may run over
    if kind in ("scan", "associative_scan") and not short or kind == "map" and info.shape[0] > MAX_STEPS:
        return None
    if kind == "scan":
        d = ch.choice(short)
        init = g.add_tensor([s for k, s in enumerate(info.shape) if k != d], info.dtype, "input",
                            name=g.fresh_name("init"))
        return ([_fn(ch.choice(hop_fns.SCAN_STEPS)), {"ref": init}, {"ref": a}],
                {"dim": d, "reverse": ch.chance(0.3)}, [])
    if kind == "associative_scan":
        return ([{"fn": ch.choice(ASSOCIATIVE)}, {"ref": a}, ch.choice(short)],
                {"reverse": ch.chance(0.3), "combine_mode": "generic"}, [])
    if kind == "map":
        fn = ch.choice(MAP_TORCH_FNS + hop_fns.MAP_FNS)
        return ([{"fn": fn} if fn.startswith("torch.") else _fn(fn), {"ref": a}], {}, [])
    if kind == "while_loop":
        counter = g.fresh_name("i")
        g.add_tensor([], "int64", "value", name=counter)
        zeros = Node(id=g.new_node_id(), op="torch.zeros", api="function", args=[[]], kwargs={"dtype": {"dtype": "int64"}},
                     outputs=[counter], kind="symbolic", extra={"form": "loop_counter"})
        return ([_fn(ch.choice(hop_fns.LOOP_CONDS)), _fn(ch.choice(hop_fns.LOOP_STEPS)),
                 {"tuple": [{"ref": counter}, {"ref": a}]}], {}, [zeros])
    if kind == "flex_attention":
        if not 2 <= rank <= 4 or info.dtype not in FLEX_FLOATS:
            return None
        pre, shape = [], list(info.shape)
        if rank < 4:  # [length, dim] or [heads, length, dim] as [batch, heads, length, dim]
            shape = [1] * (4 - rank) + shape
            pre.append(_query_view(g, a, "torch.reshape", shape, shape))
        elif ch.chance(PERMUTED_QUERY_SHARE):
            # a channels-first feature map [B, E, H, L] read as [B, H, L, E] (vision attention): the
            # query's last dim is not contiguous in memory
            shape = [shape[0], shape[2], shape[3], shape[1]]
            pre.append(_query_view(g, a, "torch.permute", [0, 2, 3, 1], shape))
        if pre:
            a = pre[0].outputs[0]
        k = g.add_tensor(shape, info.dtype, "input", name=g.fresh_name("key"))
        v = g.add_tensor(shape, info.dtype, "input", name=g.fresh_name("value"))
        kwargs = {}
        if ch.chance(0.8):
            kwargs["score_mod"] = _fn(ch.choice(hop_fns.SCORE_MODS))
        return [{"ref": a}, {"ref": k}, {"ref": v}], kwargs, pre
    raise ValueError(f"unknown higher-order operator {kind!r}")


def rewrite_hop(g: Graph, i: int, ch: Chooser) -> bool:
    """A higher-order operator call on the first float output of node ``i``, placed right after it
    (see the module docstring); False, with the graph unchanged, when none fits or runs."""
    return place_hop(g, i, ch.choice(HOPS), ch)


def place_hop(g: Graph, i: int, kind: str, ch: Chooser) -> bool:
    """``rewrite_hop`` with the operator ``kind`` (one of ``HOPS``)."""
    import torch

    from fuzz.ir.record import dtype_name

    node = g.nodes[i]
    outs = [o for o in node.outputs if g.tensors[o].dtype in FLOATS and g.tensors[o].shape]
    if not outs:
        return False
    a = outs[0]
    a_info = g.tensors[a]
    before_tensors = set(g.tensors)
    made = _call(g, kind, a, ch)
    if made is None:
        return False
    args, kwargs, pre = made
    n_out = RESULTS.get(kind, 1)
    probe = Node(id="probe", op=OPS[kind], api="function", args=args, kwargs=kwargs,
                 outputs=[f"y{k}" for k in range(n_out)])
    got = run_on_zeros(g, pre + [probe], check=False)  # None: the call does not take this tensor
    ys = [got.get(f"y{k}") for k in range(n_out)] if got else []
    if not ys or not all(isinstance(y, torch.Tensor) for y in ys):
        for t in set(g.tensors) - before_tensors:
            del g.tensors[t]
        return False
    call = Node(id=g.new_node_id(), op=OPS[kind], api="function", args=args, kwargs=kwargs, outputs=[],
                kind="symbolic", extra={"form": kind, "hop": True})
    for y in ys:
        call.outputs.append(g.add_tensor(list(y.shape), dtype_name(y.dtype), "value", name=g.fresh_name(kind)))
    if n_out > 1:  # a tuple of tensors, unpacked on the program's line
        call.extra["returns"] = list(call.outputs)
    if kind == "while_loop":  # its condition needs values: on meta tensors it runs on CPU zeros
        call.extra["data_dependent"] = "loop"
    if kind in ("scan", "map") and ch.chance(CAPTURE_SHARE):
        from fuzz.gen.datadep import META_KEY

        g.meta[META_KEY] = {**(g.meta.get(META_KEY) or {}), **LOWERING_SETTINGS}
    g.nodes[i + 1:i + 1] = pre + [call]
    g.outputs.extend(call.outputs)
    same = [o for o in call.outputs if g.tensors[o].shape == a_info.shape and g.tensors[o].dtype == a_info.dtype]
    if same and ch.chance(READ_LATER_SHARE):
        # later readers of a read the operator's result: a compiler fuses what follows into it
        # (an epilogue), and the result must be right where it is read, not only where returned
        read_later(g, i + 1 + len(pre) + 1, a, same[-1])
    return True
