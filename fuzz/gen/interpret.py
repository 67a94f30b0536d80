"""Running a graph node by node, with every intermediate value in hand.

The generator uses this to check each call against its predicted shapes and the
value search uses it to find where a NaN/Inf first appears. The reducer and triage use the
whole-graph helpers at the end (``graph_values``, ``propagate_shapes``, ``eager_values``,
``aten_ops``): a changed graph is checked on meta tensors before any child process is spent
on it, and a dropped node's output becomes a graph input holding the value it had. It calls exactly the
targets the program source calls (``torch.ops.aten.<op>.<overload>``, the function
by its import path, the submodule built from ``init``), with the same arguments.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

from fuzz.gen import custom_ops, hop_fns
from fuzz.isolation import address_space_headroom
from fuzz.ir.graph import Graph, Node
from fuzz.ir.opnames import last_component
from fuzz.ir.record import decode_value, dtype_from_name, dtype_name, resolve_op


class NodeError(Exception):
    """A node's call raised, or its outputs are not what the graph says."""

    def __init__(self, node: Node, message: str):
        super().__init__(f"{node.id} {node.name}: {message}")
        self.node = node
        self.message = message


_TARGETS: dict[tuple, Any] = {}


def resolve_cached(op: str, kind: str, overload: str | None = None):
    """``fuzz.ir.record.resolve_op``, once per process per operator (it imports modules by trial)."""
    key = (op, kind, overload)
    fn = _TARGETS.get(key)
    if fn is None:
        fn = _TARGETS[key] = resolve_op(op, kind, overload)
    return fn


# Operators the generator's runs replace by an eager equivalent: torch.cond and the loop and
# attention operators (``fuzz.gen.hop_fns``: called eagerly, torch's would run dynamo first).
EAGER_EQUIVALENTS = hop_fns.eager_equivalents()


def target(node: Node):
    """The callable a non-module node calls (for ``torch.cond``, its eager equivalent)."""
    if node.api == "aten" and custom_ops.is_custom(node.op):
        custom_ops.define_assay_ops()  # registered at import; again after a test cleared torch.library
    if node.api == "function" and node.op in EAGER_EQUIVALENTS:
        return EAGER_EQUIVALENTS[node.op]
    return resolve_cached(node.op, node.api, node.overload)


def make_submodule(node: Node, device: str = "cpu"):
    """The ``nn.Module`` a module node calls, built from its ``init``, in eval mode."""
    cls = resolve_cached(node.op, "module")
    init = node.init or {"args": [], "kwargs": {}}
    args = decode_value(init.get("args", []), _no_tensor, device)
    kwargs = {k: decode_value(v, _no_tensor, device) for k, v in init.get("kwargs", {}).items()}
    return cls(*args, **kwargs).eval()


def _no_tensor(enc):
    raise ValueError("module constructors take no tensors here")


def call_args(node: Node, env: dict, device: str = "cpu") -> tuple[list, dict]:
    def get(enc):
        v = env[enc["ref"]]
        if enc.get("scalar") == "python" and hasattr(v, "item"):  # a number forward takes (fuzz.gen.scalars)
            return v.item()
        return v

    args = decode_value(node.args, get, device)
    kwargs = {k: decode_value(v, get, device) for k, v in node.kwargs.items()}
    return args, kwargs


def result_structure(result) -> tuple[list | None, list]:
    """``(returns, tensors)``: ``returns`` is None for a single tensor, else one entry per returned
    element (True where it is a tensor); ``tensors`` are the tensor results in order."""
    import torch

    if isinstance(result, torch.Tensor):
        return None, [result]
    if isinstance(result, (tuple, list)):
        flags = [isinstance(r, torch.Tensor) for r in result]
        return flags, [r for r in result if isinstance(r, torch.Tensor)]
    return [], []


def bind_outputs(node: Node, result) -> dict:
    """Output tensor name -> value for one call's result.

    ``node.extra["returns"]`` says how the result unpacks: absent, it is learnt from this
    call (None for a single tensor; else one entry per returned element, the output's
    name or None for a non-tensor element) and stored on the node.
    """
    import torch

    if not node.outputs and result is None:  # a call made for its writes (fuzz.gen.custom_ops)
        return {}
    if "returns" not in node.extra:
        flags, tensors = result_structure(result)
        if len(tensors) != len(node.outputs) or flags == []:
            raise NodeError(node, f"returned {len(tensors)} tensors, the rule predicts {len(node.outputs)} (structure)")
        if flags is None:
            node.extra["returns"] = None
        else:
            names = iter(node.outputs)
            node.extra["returns"] = [next(names) if f else None for f in flags]
    returns = node.extra.get("returns")
    if returns is None:
        if not isinstance(result, torch.Tensor):
            raise NodeError(node, f"returned {type(result).__name__}, expected a tensor")
        return {node.outputs[0]: result}
    if not isinstance(result, (tuple, list)) or len(result) != len(returns):
        raise NodeError(node, "returned a different structure than recorded")
    return {name: r for name, r in zip(returns, result) if name is not None}


# Address space one real call during generation may add. The total-size bound covers the graph's
# tensors, not what an operator allocates inside: torch.combinations(x[12], r=8) returns 75,582 x 8
# values but builds a 12**8-element grid first (4+ GB). Under this headroom such a call fails
# fast with an allocation error and the node is dropped, instead of taking the process's memory.
CALL_HEADROOM_BYTES = 512 << 20



def _region(node: Node, device: str):
    """The context a node's call runs in: an autocast region (``extra["autocast"]``: its dtype) or none."""
    import contextlib

    import torch

    region = node.extra.get("autocast")
    if not region:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype_from_name(region))


# Calls that a non-finite input can kill the process in: LAPACK's eigenvalue driver through MKL
# segfaults on float32 inf/NaN when only eigenvalues are asked for (pytorch#121149, #93124; the
# torch.linalg documentation allows a crash on non-finite input). On such an input the call
# fails instead, like a call that raises, so the generator keeps or drops it as it does those.
CRASH_ON_NONFINITE = frozenset({"eigvals", "linalg_eigvals"})


def _nonfinite_input(node: Node, env: dict) -> str | None:
    """The name of an inf/NaN-holding floating input of a ``CRASH_ON_NONFINITE`` call, else None."""
    import torch

    if last_component(node.op) not in CRASH_ON_NONFINITE:
        return None
    for name in node.inputs():
        t = env.get(name)
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()) and t.device.type != "meta" \
                and not bool(torch.isfinite(t).all()):
            return name
    return None


def run_node(node: Node, env: dict, submodules: dict, device: str = "cpu") -> dict:
    bad = _nonfinite_input(node, env)
    if bad is not None:
        raise NodeError(node, f"non-finite values in {bad}: {node.op} may crash the process on them (not called)")
    written = node.extra.get("writes")  # a state form's in-place write into a leaf: write into a copy
    if written in env:                  # (fuzz.gen.state_forms; the program writes the real tensor)
        env = {**env, written: env[written].clone()}
    if device == "meta" and node.extra.get("data_dependent"):
        return _on_zeros(node, env, submodules)
    args, kwargs = call_args(node, env, device)
    fn = submodules[node.id] if node.api == "module" else target(node)
    try:
        with address_space_headroom(CALL_HEADROOM_BYTES), _region(node, device):
            result = fn(*args, **kwargs)
    except Exception as exc:  # the call itself failed
        raise NodeError(node, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc
    if node.extra.get("written_result"):  # a call that writes an input and returns nothing: its output
        return {node.outputs[0]: env[written]}  # is the input after the write (fuzz.gen.state_forms)
    return bind_outputs(node, result)


def _on_zeros(node: Node, env: dict, submodules: dict) -> dict:
    """A data-dependent call (``extra["data_dependent"]``, ``fuzz.gen.datadep``) on meta tensors: meta
    tensors hold no values to count or read, so it runs on CPU zeros of its inputs' shapes, as
    the generator checked it; its outputs come back as meta tensors of the shapes zeros gave."""
    import torch
    from torch.utils._python_dispatch import _disable_current_modes

    with _disable_current_modes():  # making the zeros is no operator of the graph (aten_ops records the call)
        zeros = {t: torch.zeros(env[t].shape, dtype=env[t].dtype, device="cpu") for t in node.inputs()}
    outs = run_node(node, zeros, submodules, "cpu")
    with _disable_current_modes():
        return {k: v.to("meta") for k, v in outs.items()}


def check_outputs(graph: Graph, node: Node, outs: dict) -> None:
    for name in node.outputs:
        info = graph.tensors[name]
        t = outs.get(name)
        if t is None:
            raise NodeError(node, f"no value for output {name}")
        # a data-dependent output shape (fuzz.gen.datadep): the graph holds the rank, the size zeros gave
        shape_ok = list(t.shape) == list(info.shape) or (
            node.extra.get("data_dependent") == "shape" and t.dim() == len(info.shape))
        if not shape_ok or dtype_name(t.dtype) != info.dtype:
            raise NodeError(node, f"{name}: got {dtype_name(t.dtype)}{list(t.shape)}, predicted {info.dtype}{info.shape}")


def build_submodules(graph: Graph, device: str = "cpu", state: dict | None = None) -> dict:
    """node id -> submodule for every module node (weights from ``state`` keys ``<attr>.<name>`` when given)."""
    import torch

    from fuzz.gen.program import module_attr

    mods = {}
    if not any(node.api == "module" for node in graph.nodes):
        return mods
    # The default CPU generator directly: torch.manual_seed also seeds every accelerator and
    # costs milliseconds; module constructors draw their initial weights from this one.
    rng = torch.default_generator.get_state()
    try:
        torch.default_generator.manual_seed(0)
        for node in graph.nodes:
            if node.api == "module":
                m = make_submodule(node, device)
                if state:
                    prefix = module_attr(node) + "."
                    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
                    if sub:
                        m.load_state_dict(sub, strict=False)
                mods[node.id] = m
    finally:
        torch.default_generator.set_state(rng)
    return mods


def submodule_state(graph: Graph, submodules: dict) -> dict:
    from fuzz.gen.program import module_attr

    state = {}
    for node in graph.nodes:
        if node.api == "module" and node.id in submodules:
            for k, v in submodules[node.id].state_dict().items():
                state[f"{module_attr(node)}.{k}"] = v
    return state


def run_graph(graph: Graph, leaves: dict, submodules: dict, device: str = "cpu", check: bool = True,
              on_node: Callable[[Node, dict, dict], bool | None] | None = None) -> dict:
    """All values: ``leaves`` (inputs and params by graph name) plus every node's outputs.

    Raises ``NodeError`` for the first node that fails (or, with ``check``, whose outputs
    disagree with the graph's shapes/dtypes). ``on_node(node, outs, env)`` is called after
    each node; returning True stops the run early.
    """
    env = dict(leaves)
    for node in graph.nodes:
        outs = run_node(node, env, submodules, device)
        if check:
            check_outputs(graph, node, outs)
        env.update(outs)
        if on_node is not None and on_node(node, outs, env):
            break
    return env


# ---------------------------------------------------------------------------
# whole graphs, outside the generator: the reducer and triage listing use these
# (nothing here runs the compiler under test)


class InvalidGraph(Exception):
    """The graph cannot be executed (an operator rejected its arguments)."""


def module_state_keys(graph: Graph, tensors: dict) -> list[str]:
    """Keys of ``tensors`` that are weights of the graph's module nodes."""
    from fuzz.gen.program import module_attr

    prefixes = tuple(module_attr(n) + "." for n in graph.nodes if n.api == "module")
    return [k for k in tensors if prefixes and k.startswith(prefixes)]


def _meta_leaves_and_submodules(graph: Graph) -> tuple[dict, dict]:
    import torch

    leaves = {n: torch.empty(graph.tensors[n].shape, dtype=getattr(torch, graph.tensors[n].dtype), device="meta")
              for n in graph.inputs + graph.params}
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero-element init on meta is a no-op: fine
        submodules = build_submodules(graph, "meta")
    return leaves, submodules


def graph_values(graph: Graph, tensors: dict, device: str = "cpu") -> dict:
    """Every tensor's value (``device="meta"``: its meta tensor) by name, for a whole graph fed with
    ``tensors`` (inputs, params, module weights); ``InvalidGraph`` on failure."""
    import torch

    try:
        if device == "meta":
            leaves, submodules = _meta_leaves_and_submodules(graph)
        else:
            leaves = {n: tensors[n] for n in graph.inputs + graph.params}
            submodules = build_submodules(graph, device, {k: tensors[k] for k in module_state_keys(graph, tensors)})
        with torch.no_grad():
            return run_graph(graph, leaves, submodules, device, check=False)
    except NodeError as exc:
        raise InvalidGraph(str(exc)[:300]) from None
    except Exception as exc:  # building a submodule, a missing tensor, a bad structure
        raise InvalidGraph(f"{type(exc).__name__}: {str(exc)[:300]}") from None


def aten_ops(graph: Graph) -> list[str]:
    """The ATen operators the graph's calls dispatch to (run on meta tensors), sorted.

    ``torch.nn.functional.relu``, ``torch.nn.ReLU`` and ``aten::relu`` all give ``aten.relu``:
    triage uses this to see that reduced cases spelled differently are the same bug.
    Raises ``InvalidGraph`` when the graph cannot run on meta tensors.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: set[str] = set()
    ignore = {"aten.detach", "aten.alias", "aten.empty", "aten.empty_strided", "aten.lift_fresh"}

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func.overloadpacket)
            if name not in ignore:
                seen.add(name)
            return func(*args, **(kwargs or {}))

    try:
        leaves, submodules = _meta_leaves_and_submodules(graph)
        with torch.no_grad(), Record():
            run_graph(graph, leaves, submodules, "meta", check=False)
    except Exception as exc:
        raise InvalidGraph(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    return sorted(seen)


def propagate_shapes(graph: Graph, tensors: dict | None = None) -> Graph:
    """Recompute every value tensor's shape and dtype in place by running the graph on meta tensors
    (given ``tensors``, its inputs, params and module weights: on them, on the CPU, for a graph
    meta tensors cannot run, such as an autocast region).

    Raises ``InvalidGraph`` when an operator rejects the (changed) graph.
    """
    return shapes_from_values(graph, graph_values(graph, {}, "meta") if tensors is None else graph_values(graph, tensors, "cpu"))


def shapes_from_values(graph: Graph, env: dict) -> Graph:
    """Every value tensor's shape and dtype set, in place, from ``env`` (tensor name -> value);
    ``InvalidGraph`` when a node's output has no value."""
    for node in graph.nodes:
        for name in node.outputs:
            value = env.get(name)
            if value is None:
                raise InvalidGraph(f"{node.id}: no value for {name}")
            info = graph.tensors[name]
            info.shape = [int(d) for d in value.shape]
            info.dtype = dtype_name(value.dtype)
    return graph


def eager_values(graph: Graph, tensors: dict) -> dict:
    """Every tensor's eager CPU value (detached clones); raises ``InvalidGraph`` on failure."""
    env = graph_values(graph, tensors, "cpu")
    return {k: v.detach().clone() for k, v in env.items() if hasattr(v, "detach")}
