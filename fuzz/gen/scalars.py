"""Scalar arguments as inputs (``ModelPolicy.scalars``, ``--scalars``).

A generated call's numbers (``torch.add(x, 2.5)``, ``leaky_relu(x, negative_slope=0.01)``,
``torch.clamp(x, min=-1)``) are constants of the program: a compiler folds them in. Real code
passes numbers in, and two compiler paths handle them, each with bugs of its own:

- ``python``: the number becomes an argument of ``forward``, passed as a Python ``float`` or
  ``int``. Dynamo specialises on it at the first call; with ``dynamic=True`` (and on a second call
  with another value, dynamic mode's second call: ``other_value``) it becomes a ``SymFloat`` /
  ``SymInt`` graph input, which inductor turns into a 0-dim tensor (``tensorify_python_scalars``)
  or a kernel argument.
- ``tensor``: the number becomes a 0-dim tensor input of a drawn dtype. A 0-dim tensor takes part
  in type promotion by category only (``int32 + 0-dim float64 -> float64``, ``float16 + 0-dim
  float64 -> float16``), and a compiler must follow that rule and read the value at run time.

``lift_scalars(graph, chooser, kind, rule_of)`` rewrites up to two numbers of the solved graph
(before values are drawn: the value search and the guard run check the result like any
graph). Which numbers: a top-level float argument of a function or aten call, or an int argument
that the call's inferred rule uses in no shape expression or constraint (a size, a dim or a count
stays a constant). The node's argument becomes ``{"ref": name, "scalar": "python"}`` (python) or
``{"ref": name}`` (tensor); the graph input ``name`` is a 0-dim tensor either way (float64 or
int64 for a Python number), saved in ``inputs.safetensors`` like any input. ``program.py``'s
``load_inputs`` passes a python scalar as ``tensors[name].item()``, so the campaign, the
repro and the reducer call ``forward`` exactly as a user would. ``graph.meta["scalars"]`` records
each lifted number: ``{name: {"kind", "value", "node", "arg"}}``; the value search starts from
the recorded value (``pinned_value``).
"""

from __future__ import annotations

import json
import math
import re

from fuzz.gen.chooser import Chooser
from fuzz.ir.graph import Graph, Node

MAX_LIFTS = 2
# 0-dim tensor dtypes a lifted number may get, by the number's type; the number must survive the cast.
TENSOR_DTYPES = {
    "float": ("float64", "float32", "float16", "bfloat16"),
    "int": ("int64", "int32", "int8", "uint8", "float64", "float32", "bool"),
}
# Calls appended to take a lifted number: (function, fixed kwargs, where the number goes). Where
# promotion, rounding and scalar handling differ by dtype: arithmetic with a Python or 0-dim operand,
# floor/trunc division and remainder, powers, clamps, comparisons, fills, activations' constants.
SCALAR_CALLS = (
    ("torch.add", {}, "arg:1"), ("torch.sub", {}, "arg:1"), ("torch.mul", {}, "arg:1"), ("torch.div", {}, "arg:1"),
    ("torch.div", {"rounding_mode": "floor"}, "arg:1"), ("torch.div", {"rounding_mode": "trunc"}, "arg:1"),
    ("torch.floor_divide", {}, "arg:1"), ("torch.remainder", {}, "arg:1"), ("torch.fmod", {}, "arg:1"),
    ("torch.pow", {}, "arg:1"), ("torch.clamp", {}, "kw:min"), ("torch.clamp", {}, "kw:max"),
    ("torch.gt", {}, "arg:1"), ("torch.eq", {}, "arg:1"), ("torch.full_like", {}, "arg:1"),
    ("torch.add", {"other": 1}, "kw:alpha"), ("torch.nn.functional.leaky_relu", {}, "arg:1"),
    ("torch.nn.functional.elu", {}, "kw:alpha"), ("torch.nn.functional.softplus", {}, "kw:beta"),
    ("torch.nn.functional.hardtanh", {"max_val": 8.0}, "kw:min_val"), ("torch.xlogy", {}, "arg:1"),
    ("torch.bitwise_and", {}, "arg:1"), ("torch.bitwise_left_shift", {}, "arg:1"),
)
FLOAT_ONLY = ("torch.nn.functional.leaky_relu", "torch.nn.functional.elu", "torch.nn.functional.softplus",
              "torch.nn.functional.hardtanh", "torch.xlogy")
NUMERIC_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8")
FLOAT_VALUES = (0.5, -1.5, 2.0, 3.0, 1e-3, 100.0, -0.0, 7.25, 0.1, 65504.0)
INT_VALUES = (2, -3, 7, 3, 1, 255, 1 << 20)
# forms' rewrites whose arguments are not the rule's (a transform's function, checkpoint's call...)
_SKIP_FORMS = ("checkpoint", "cond", "transform", "vmap", "grad", "jacrev", "jacfwd", "hessian", "jvp")


def other_value(v):
    """Another value for a Python-number input, for dynamic mode's second call (the compiled
    function must read the number, not a constant it folded in): ``v + 1`` for an int; for a float
    ``v * 0.5 + 0.25`` (``0.25`` for 0; a non-finite value stays)."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v + 1
    if not math.isfinite(v):
        return v
    return v * 0.5 + 0.25


def pinned_value(graph: Graph, name: str):
    """The number a lifted input held in the call it came from (``graph.meta["scalars"]``), or None."""
    entry = (graph.meta.get("scalars") or {}).get(name)
    if not isinstance(entry, dict) or "value" not in entry:
        return None
    v = entry["value"]
    if isinstance(v, dict) and "float" in v:
        return float(v["float"])
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _number(v):
    """``(value, "float" | "int")`` for a liftable encoded number, else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, float):
        return v, "float"
    if isinstance(v, int):
        return v, "int"
    if isinstance(v, dict) and set(v) == {"float"}:
        return float(v["float"]), "float"
    return None


def _rule_ints_in_use(rule) -> set[int]:
    """Indices ``k`` of the rule's integer placeholders its shape expressions or constraints use."""
    text = json.dumps([rule.constraints, rule.outputs])
    return {int(m) for m in re.findall(r'"a(\d+)"', text)}


def _free_positions(node: Node, rule) -> list[tuple[str, object]]:
    """``(where, value)`` of the numbers of ``node`` that may become inputs: ``where`` is ``arg:<i>`` or
    ``kw:<name>`` (top level only; a list of ints is a shape)."""
    if node.api == "module" or node.extra.get("form") in _SKIP_FORMS or node.extra.get("datadep") \
            or node.extra.get("autocast") or node.extra.get("data_dependent"):
        return []
    template = rule.template if rule is not None else None
    used = _rule_ints_in_use(rule) if rule is not None and rule.status == "symbolic" else None
    out = []

    def consider(where, value, slot):
        num = _number(value)
        if num is None:
            return
        if num[1] == "int":
            # an int is free only where its rule's placeholder is in no expression or constraint
            if used is None or not (isinstance(slot, dict) and "A" in slot) or slot["A"] in used:
                return
        elif not (isinstance(slot, dict) and ("F" in slot)) and template is not None:
            return  # a float the template wrote literally: not one of the rule's values
        out.append((where, value))

    targs = template.get("args", []) if isinstance(template, dict) else []
    tkw = template.get("kwargs", {}) if isinstance(template, dict) else {}
    for i, a in enumerate(node.args):
        consider(f"arg:{i}", a, targs[i] if i < len(targs) else None)
    for k, v in node.kwargs.items():
        consider(f"kw:{k}", v, tkw.get(k))
    return out


def _set(node: Node, where: str, value) -> None:
    kind, _, key = where.partition(":")
    if kind == "arg":
        node.args = list(node.args)
        node.args[int(key)] = value
    else:
        node.kwargs = {**node.kwargs, key: value}


def _get(node: Node, where: str):
    kind, _, key = where.partition(":")
    return node.args[int(key)] if kind == "arg" else node.kwargs[key]


def _fits(value, dtype: str) -> bool:
    """Whether a number keeps its value in a 0-dim tensor of ``dtype``."""
    import torch

    from fuzz.ir.record import dtype_from_name

    if dtype == "bool":
        return value in (0, 1)
    if isinstance(value, float) and not math.isfinite(value):
        return dtype.startswith(("float", "bfloat"))
    try:
        t = torch.tensor(value, dtype=dtype_from_name(dtype))
    except (RuntimeError, OverflowError):
        return False
    return float(t.item()) == float(value)


def _try(g: Graph, node: Node, where: str, name: str, dtype: str, value, mark: dict) -> bool:
    """Replace the number at ``where`` by input ``name`` (0-dim ``dtype`` holding ``value``); kept when
    the call runs and its outputs keep their shapes (and dtypes, unless nothing reads them)."""
    import torch

    from fuzz.gen.interpret import run_node
    from fuzz.ir.record import dtype_from_name, dtype_name

    old = _get(node, where)
    g.add_tensor([], dtype, "input", name=name)
    _set(node, where, {"ref": name, **mark})
    env = {}
    try:
        for t in node.inputs():
            info = g.tensors[t]
            env[t] = torch.zeros(info.shape, dtype=dtype_from_name(info.dtype))
        env[name] = torch.tensor(value, dtype=dtype_from_name(dtype))
        if not mark and env[name].is_floating_point():
            # bwd and train modes pass it requiring grad: an argument typed float takes a 0-dim
            # tensor only without (cosine_embedding_loss's margin), so the call must take that too
            with torch.enable_grad():
                run_node(node, {**env, name: env[name].clone().requires_grad_(True)}, {})
            node.extra.pop("returns", None)
        outs = run_node(node, env, {})
        consumed = {t for n in g.nodes for t in n.inputs()}
        changed = {}
        for o in node.outputs:
            y = outs.get(o)
            if y is None or list(y.shape) != list(g.tensors[o].shape):
                raise ValueError("shape")
            if dtype_name(y.dtype) != g.tensors[o].dtype:
                if o in consumed:
                    raise ValueError("a later reader's rule was solved for the graph's dtype")
                changed[o] = dtype_name(y.dtype)
    except Exception:  # noqa: BLE001 - the call does not take the input here: the number stays
        _set(node, where, old)
        del g.tensors[name]
        return False
    finally:
        node.extra.pop("returns", None)
    for o, dt in changed.items():
        g.tensors[o].dtype = dt
    return True


def _append_scalar_call(g: Graph, ch: Chooser) -> list:
    """A new call of a number-taking operator (``SCALAR_CALLS``) on a tensor of ``g``, its output a
    new graph output: ``[(node, where, number)]`` for the number to lift, or ``[]`` if none ran."""
    import torch

    from fuzz.gen.interpret import run_node
    from fuzz.ir.record import dtype_from_name, dtype_name

    pool = [t for t, info in g.tensors.items() if info.role in ("input", "value") and info.shape != []
            and info.dtype in NUMERIC_DTYPES and 0 < math.prod(info.shape)]
    if not pool:
        return []
    for _ in range(3):
        t = ch.choice(pool)
        integral = not g.tensors[t].dtype.startswith(("float", "bfloat"))
        op, kwargs, where = ch.choice([c for c in SCALAR_CALLS if not (integral and c[0] in FLOAT_ONLY)])
        typ = "int" if integral and ch.chance(0.6) else "float"
        number = ch.choice(INT_VALUES if typ == "int" else FLOAT_VALUES)
        args = [{"ref": t}] + ([number] if where == "arg:1" else [])
        kwargs = dict(kwargs, **({where[3:]: number} if where.startswith("kw:") else {}))
        node = Node(id=g.new_node_id(), op=op, api="function", args=args, kwargs=kwargs, outputs=["made"],
                    kind="symbolic")
        info = g.tensors[t]
        try:
            y = run_node(node, {t: torch.zeros(info.shape, dtype=dtype_from_name(info.dtype))}, {})
        except Exception:  # noqa: BLE001 - the operator does not take this tensor or number
            node.extra.pop("returns", None)
            continue
        finally:
            node.extra.pop("returns", None)
        out = y.get("made")
        if not isinstance(out, torch.Tensor):
            continue
        node.outputs = [g.add_tensor(list(out.shape), dtype_name(out.dtype), name=g.fresh_name(op.split(".")[-1]))]
        g.add_node(node)
        g.outputs.append(node.outputs[0])
        return [(node, where, number)]
    return []


def lift_scalars(g: Graph, ch: Chooser, kind: str, rule_of, count: int = MAX_LIFTS) -> list[dict]:
    """Make up to ``count`` numbers of ``g``'s calls graph inputs (see the module docstring); what was
    lifted, also in ``g.meta["scalars"]``. One of them is the number of a call appended for it
    (``SCALAR_CALLS``), so every model of the policy has one where some call can take it."""
    spots = []
    for node in g.nodes:
        rule = rule_of(node.rule) if node.rule else None
        spots += [(node, where, value) for where, value in _free_positions(node, rule)]
    spots = ([spots.pop(ch.integer(0, len(spots) - 1))] if spots else []) + _append_scalar_call(g, ch)
    lifted: dict[str, dict] = {}
    while spots and len(lifted) < count:
        node, where, value = spots.pop(ch.integer(0, len(spots) - 1))
        number, typ = _number(value)
        stem = where.partition(":")[2] if where.startswith("kw:") else "scalar"
        name = g.fresh_name(stem)
        if kind == "python":
            options = ["float64" if typ == "float" else "int64"]
            mark = {"scalar": "python"}
        else:
            options = [d for d in TENSOR_DTYPES[typ] if _fits(number, d)]
            options = [options.pop(ch.integer(0, len(options) - 1)) for _ in range(min(3, len(options)))]
            mark = {}
        for dtype in options:
            if _try(g, node, where, name, dtype, number, mark):
                lifted[name] = {"kind": kind, "value": value, "node": node.id, "arg": where, "dtype": dtype}
                break
    if lifted:
        g.meta["scalars"] = lifted
    return list(lifted.values())
