"""The graph IR: operator calls connected by tensors, stored in a networkx graph.

A ``Graph`` holds

- *tensors*, by name (``x0``, ``w3``, ``conv2d_4``...): shape, dtype and role
  (``input``: fed by the caller; ``param``: a learnable weight; ``value``: made by a node);
- *nodes*, operator calls in topological order: the operator, how it is called
  (``api``: ``aten``, ``function`` or ``module``), the arguments as encoded values
  (``fuzz.ir.record``) whose tensors are references ``{"ref": name}``, the output
  tensor names, and ``kind``: ``symbolic`` (placed by solving its inferred rule) or
  ``concrete`` (a recorded valid call replayed);
- the graph *outputs*.

The networkx ``MultiDiGraph`` (``Graph.nx``) has one vertex per node id and per
input/param tensor, and one edge per tensor use, carrying the tensor's name, shape
and dtype. JSON (``to_json``/``from_json``) round-trips exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import networkx as nx

GRAPH_FORMAT_VERSION = 1


@dataclass
class TensorInfo:
    shape: list[int]
    dtype: str
    role: str = "value"  # "input" | "param" | "value"

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n


@dataclass
class Node:
    id: str
    op: str
    api: str                       # "aten" | "function" | "module"
    args: list
    kwargs: dict
    outputs: list[str]
    kind: str = "symbolic"         # "symbolic" | "concrete"
    overload: str | None = None
    init: dict | None = None       # modules: constructor {"args": [...], "kwargs": {...}}
    rule: str | None = None        # signature key of the rule it came from
    extra: dict = field(default_factory=dict)

    def inputs(self) -> list[str]:
        """Names of the tensors this node reads, in argument order (with repeats)."""
        return list(refs_in([self.args, [self.kwargs[k] for k in sorted(self.kwargs)]]))

    @property
    def name(self) -> str:
        if self.api == "aten" and self.overload and self.overload != "default":
            return f"{self.op}.{self.overload}"
        return self.op


def called_node(node: "Node") -> "Node":
    """The call ``node`` makes: for ``torch.utils.checkpoint.checkpoint(f, *args)`` (the checkpoint
    form) a node calling ``f`` on ``args`` with the same outputs, so rules about what an operator
    does (its indices, its ties) see the operator and not the wrapper; else ``node`` itself."""
    fn = node.args[0] if node.op.endswith("checkpoint.checkpoint") and node.args else None
    if not (isinstance(fn, dict) and "fn" in fn):
        return node
    return Node(id=node.id, op=fn["fn"], api=fn.get("api", "function"), overload=fn.get("overload"),
                args=list(node.args[1:]), kwargs={k: v for k, v in node.kwargs.items() if k != "use_reentrant"},
                outputs=list(node.outputs), kind=node.kind, extra=dict(node.extra))


def refs_in(value: Any) -> Iterator[str]:
    """The tensor names referenced anywhere in an argument value (``{"ref": name}``, nested)."""
    if isinstance(value, list):
        for v in value:
            yield from refs_in(v)
    elif isinstance(value, dict):
        if "ref" in value:
            yield value["ref"]
        elif "tuple" in value:
            yield from refs_in(value["tuple"])
        elif "call" in value:  # a value made by a call on tensors: torch.Tensor.item(t) (fuzz.gen.datadep)
            yield from refs_in([value.get("args", []), [value.get("kwargs", {})[k] for k in sorted(value.get("kwargs", {}))]])


def number_refs(value: Any) -> Iterator[str]:
    """The tensor names referenced as ``{"ref": name, "scalar": "python"}``: graph inputs that
    ``forward`` takes as Python numbers (``fuzz.gen.scalars``)."""
    if isinstance(value, list):
        for v in value:
            yield from number_refs(v)
    elif isinstance(value, dict):
        if "ref" in value:
            if value.get("scalar") == "python":
                yield value["ref"]
        else:
            for v in value.values():
                yield from number_refs(v)


def python_number_inputs(graph: "Graph") -> dict[str, str]:
    """Graph inputs ``forward`` takes as Python numbers (``number_refs``): name -> ``float`` | ``int``."""
    out: dict[str, str] = {}
    for node in graph.nodes:
        for ref in number_refs([node.args, list(node.kwargs.values())]):
            info = graph.tensors.get(ref)
            if info is not None and info.role == "input":
                out[ref] = "float" if info.dtype.startswith(("float", "bfloat")) else "int"
    return out


def replace_refs(value: Any, mapping: dict[str, str]) -> Any:
    """A copy of an encoded value with tensor references renamed by ``mapping``."""
    if isinstance(value, list):
        return [replace_refs(v, mapping) for v in value]
    if isinstance(value, dict):
        if "ref" in value:  # other keys kept: {"scalar": "python"} (fuzz.gen.scalars)
            return {**value, "ref": mapping.get(value["ref"], value["ref"])}
        if "tuple" in value:
            return {"tuple": [replace_refs(v, mapping) for v in value["tuple"]]}
        if "call" in value:
            return {**value, "args": replace_refs(value.get("args", []), mapping),
                    "kwargs": {k: replace_refs(v, mapping) for k, v in value.get("kwargs", {}).items()}}
    return value


def written_state(graph: Graph) -> list[tuple[str, str]]:
    """``(state, value)`` for each in-place write of a buffer or graph input that ``graph.meta["writes"]``
    records (``fuzz.gen.state_forms``) and the graph still has (a reduced graph may have lost one):
    the buffer (a ``param``) or input written, and the graph value that holds it after the call."""
    out = []
    produced = {o for n in graph.nodes for o in n.outputs}
    for w in graph.meta.get("writes", []):
        state, value = w.get("state"), w.get("value")
        if state in graph.tensors and graph.tensors[state].role in ("param", "input") and value in produced:
            out.append((state, value))
    return out


class Graph:
    def __init__(self) -> None:
        self.tensors: dict[str, TensorInfo] = {}
        self.nodes: list[Node] = []
        self.outputs: list[str] = []
        self.meta: dict = {}
        self._issued: set[str] = set()  # node ids handed out (new_node_id) for nodes not yet added

    # -- building -------------------------------------------------------------
    def fresh_name(self, stem: str) -> str:
        stem = "".join(c if c.isalnum() else "_" for c in stem).strip("_").lower() or "t"
        if stem[0].isdigit():
            stem = "t" + stem
        i = len(self.tensors)
        while f"{stem}_{i}" in self.tensors:
            i += 1
        return f"{stem}_{i}"

    def add_tensor(self, shape, dtype: str, role: str = "value", name: str | None = None) -> str:
        name = name or self.fresh_name({"input": "x", "param": "w"}.get(role, "t"))
        if name in self.tensors:
            raise ValueError(f"tensor {name} already exists")
        self.tensors[name] = TensorInfo([int(d) for d in shape], dtype, role)
        return name

    def add_node(self, node: Node, index: int | None = None) -> Node:
        for t in node.inputs():
            if t not in self.tensors:
                raise ValueError(f"node {node.id} reads unknown tensor {t}")
        if index is None:
            self.nodes.append(node)
        else:
            self.nodes.insert(index, node)
        return node

    def new_node_id(self) -> str:
        """An id no node has and none handed out before has: a rewrite that makes several nodes
        before adding them (a clone, a view, a write) gets one id each."""
        used = {n.id for n in self.nodes} | self._issued
        i = len(self.nodes)
        while f"n{i}" in used:
            i += 1
        self._issued.add(f"n{i}")
        return f"n{i}"

    # -- queries --------------------------------------------------------------
    @property
    def inputs(self) -> list[str]:
        return [n for n, t in self.tensors.items() if t.role == "input"]

    @property
    def params(self) -> list[str]:
        return [n for n, t in self.tensors.items() if t.role == "param"]

    def producer(self, tensor: str) -> Node | None:
        for node in self.nodes:
            if tensor in node.outputs:
                return node
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs()]

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def ops(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def nx(self) -> nx.MultiDiGraph:
        """The dataflow graph: vertices are node ids and input/param tensor names; edges are tensor uses."""
        g = nx.MultiDiGraph()
        producer: dict[str, str] = {}
        for name, info in self.tensors.items():
            if info.role != "value":
                g.add_node(name, kind=info.role)
                producer[name] = name
        for node in self.nodes:
            g.add_node(node.id, kind="call", op=node.name, call=node)
            for t in node.inputs():
                info = self.tensors[t]
                g.add_edge(producer.get(t, t), node.id, tensor=t, shape=tuple(info.shape), dtype=info.dtype)
            for t in node.outputs:
                producer[t] = node.id
        return g

    def topological_check(self) -> None:
        """Raise ValueError unless every node reads only tensors defined before it."""
        defined = {n for n, t in self.tensors.items() if t.role != "value"}
        for node in self.nodes:
            for t in node.inputs():
                if t not in defined:
                    raise ValueError(f"node {node.id} reads {t} before it is defined")
            defined.update(node.outputs)
        for t in self.outputs:
            if t not in defined:
                raise ValueError(f"graph output {t} is never defined")

    def prune(self) -> None:
        """Drop nodes whose outputs nobody uses (and are not graph outputs), then unused tensors. A
        node without outputs (a call that only writes into its arguments) stays."""
        changed = True
        while changed:
            changed = False
            used = set(self.outputs)
            for node in self.nodes:
                used.update(node.inputs())
            for node in list(self.nodes):
                if node.outputs and not any(t in used for t in node.outputs):
                    self.nodes.remove(node)
                    changed = True
        self.drop_unused_tensors()

    def drop_unused_tensors(self) -> None:
        """Forget tensors that no node reads or writes and that are not graph outputs."""
        live = set(self.outputs)
        for node in self.nodes:
            live.update(node.inputs())
            live.update(node.outputs)
        for name in list(self.tensors):
            if name not in live:
                del self.tensors[name]

    # -- text -----------------------------------------------------------------
    def render(self) -> str:
        """fx-style listing: one line per call."""
        lines = []
        laid_out = self.meta.get("layouts") or {}  # inputs not contiguous in memory (fuzz.gen.layouts)
        numbers = {r for n in self.nodes for r in number_refs([n.args, list(n.kwargs.values())])}
        for name in self.inputs + self.params:
            t, lay = self.tensors[name], laid_out.get(name) if name in self.inputs else None
            note = "  # passed to forward as a Python number" if name in numbers else "" if not isinstance(lay, dict) else f"  # strided: dims in memory {lay.get('order')}" + (
                f", step {lay['step']}" if lay.get("step", 1) != 1 else "") + (
                f", rows padded by {lay['pad']}" if lay.get("pad", 0) else "") + (
                f", expanded along {lay['expand']}" if lay.get("expand") else "")
            lines.append(f"{name}: {t.role} {t.dtype}{t.shape}{note}")
        for node in self.nodes:
            outs = ", ".join(f"{o}: {self.tensors[o].dtype}{self.tensors[o].shape}" for o in node.outputs)
            args = ", ".join(_render_value(a) for a in node.args)
            kw = ", ".join(f"{k}={_render_value(v)}" for k, v in node.kwargs.items())
            call = f"{node.name}({', '.join(p for p in (args, kw) if p)})"
            lines.append(f"{outs or '_'} = {call}  # {node.kind}")
            if node.extra.get("graph_break"):
                lines.append("graph_break()  # dynamo compiles the calls above and below as separate graphs")
        lines.append(f"return {', '.join(self.outputs)}")
        return "\n".join(lines)

    # -- JSON -----------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "version": GRAPH_FORMAT_VERSION,
            "tensors": {k: asdict(v) for k, v in self.tensors.items()},
            "nodes": [asdict(n) for n in self.nodes],
            "outputs": list(self.outputs),
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Graph":
        """The graph of a ``to_json`` dict; ``ValueError`` ("not a graph: ...") for anything else."""
        _check_graph_json(data)
        try:
            g = cls()
            g.tensors = {k: TensorInfo(**v) for k, v in data["tensors"].items()}
            g.nodes = [Node(**n) for n in data["nodes"]]
            g.outputs = list(data["outputs"])
            g.meta = dict(data.get("meta", {}))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a graph: {exc}") from None
        g.topological_check()
        g._unique_node_ids()
        return g

    def _unique_node_ids(self) -> None:
        """Give a fresh id to each later node sharing an id with an earlier one (cases saved before
        ``new_node_id`` kept them apart: a view_write form's clone, view and write shared one, and
        the reducer, which finds nodes by id, failed on them). A module node keeps its id: it names
        the submodule (``fuzz.gen.program.module_attr``); the program text does not change."""
        seen: set[str] = set()
        for node in self.nodes:
            if node.id in seen and node.api != "module":
                node.id = self.new_node_id()
            seen.add(node.id)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> "Graph":
        return cls.from_json(json.loads(text))

    def copy(self) -> "Graph":
        return Graph.from_json(json.loads(json.dumps(self.to_json())))


def _check_graph_json(data: Any) -> None:
    """The types ``to_json`` writes, checked before anything is built (a damaged or hand-edited
    graph.json must be one ``ValueError``, not a failure deep inside a later stage)."""

    def bad(what: str):
        raise ValueError(f"not a graph: {what}")

    if not isinstance(data, dict):
        bad(f"a JSON {type(data).__name__}, not an object")
    tensors, nodes, outputs = data.get("tensors"), data.get("nodes"), data.get("outputs")
    if not isinstance(tensors, dict) or not isinstance(nodes, list) or not isinstance(outputs, list):
        bad("'tensors' must be an object, 'nodes' and 'outputs' lists")
    for name, t in tensors.items():
        if not isinstance(t, dict) or not isinstance(t.get("shape"), list) or not isinstance(t.get("dtype"), str):
            bad(f"tensor {name!r} needs a 'shape' list and a 'dtype' string")
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in t["shape"]):
            bad(f"tensor {name!r} has a shape that is not a list of sizes: {t['shape']!r}")
    for n in nodes:
        if not isinstance(n, dict) or not isinstance(n.get("id"), str) or not isinstance(n.get("op"), str):
            bad("every node needs an 'id' and an 'op' string")
        if n.get("api") not in ("aten", "function", "module"):
            bad(f"node {n['id']!r} has api {n.get('api')!r}; expected aten, function or module")
        if not isinstance(n.get("args"), list) or not isinstance(n.get("kwargs"), dict):
            bad(f"node {n['id']!r} needs an 'args' list and a 'kwargs' object")
        if not isinstance(n.get("outputs"), list) or not all(isinstance(o, str) for o in n["outputs"]):
            bad(f"node {n['id']!r} needs an 'outputs' list of tensor names")
    if not all(isinstance(o, str) for o in outputs):
        bad("'outputs' must be a list of tensor names")
    if not isinstance(data.get("meta", {}), dict):
        bad("'meta' must be an object")


def _render_value(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_render_value(x) for x in v) + "]"
    if isinstance(v, dict):
        if "ref" in v:
            return v["ref"]
        if "tuple" in v:
            return "(" + ", ".join(_render_value(x) for x in v["tuple"]) + ",)"
        if "dtype" in v:
            return f"torch.{v['dtype']}"
        if "float" in v:
            return f"float('{v['float']}')"
        if "enum" in v:
            return v["enum"]
        if "fn" in v:
            return v["fn"]
        if "call" in v:  # a value made by a call: a size (a.size(1), fuzz.gen.size_args), a view, item()
            return call_text(v, _render_value)
    return repr(v)


def call_text(value: dict, render) -> str:
    """A value made by a call (``{"call": name, "args", "kwargs"}``) as code, each argument
    written by ``render``: a size as ``a.size(1)`` and a product of sizes as ``a * b``
    (``fuzz.gen.size_args``), any other call as ``name(args, k=v)``. The graph listing and
    ``fuzz.gen.program`` both write it so."""
    args = value.get("args", [])
    if value["call"] == "torch.Tensor.size" and len(args) == 2:
        return f"{render(args[0])}.size({render(args[1])})"
    if value["call"] == "operator.mul" and len(args) == 2:
        return f"{render(args[0])} * {render(args[1])}"
    parts = [render(a) for a in args] + [f"{k}={render(x)}" for k, x in value.get("kwargs", {}).items()]
    return f"{value['call']}({', '.join(parts)})"
