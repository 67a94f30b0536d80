"""Graphs as runnable PyTorch programs.

A generated model is saved as a directory::

    graph.json           the graph IR (fuzz.ir.graph.Graph.to_json)
    program.py           a standalone program: ``class Model(torch.nn.Module)``,
                         ``load_inputs()``, ``load_model()``, and a ``__main__`` block
                         that runs the model eagerly and prints the output shapes
    inputs.safetensors   the graph inputs, by tensor name
    params.safetensors   the model's state dict (graph parameters and submodule weights)

``program.py`` depends only on torch: it carries a ~15-line safetensors reader
(u64 little-endian header length, JSON header, raw bytes -> ``torch.frombuffer``)
and reads its tensor files relative to its own location. Nothing is ever pickled.

The same source is what runs in-process: ``build_module`` executes
``program_source(graph)`` and instantiates its ``Model``, so a campaign's
in-process run and a standalone repro run the identical code.

Public API (used by the campaign): ``program_source``, ``save_program``,
``load_program``, ``build_module``, ``run_eager``.
"""

from __future__ import annotations

import collections
import json
import keyword
import linecache
import math
import os
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from fuzz.gen import custom_ops, hop_fns, layouts
from fuzz.ir.graph import Graph, Node, call_text, python_number_inputs, written_state
from fuzz.ir.opnames import short_name

PROGRAM_FILES = ("graph.json", "program.py", "inputs.safetensors", "params.safetensors")
# Module prefixes reachable as attributes after a bare ``import torch``.
_TORCH_ATTR_MODULES = {"torch", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.special", "torch.fft",
                       "torch.Tensor"}

_READER = '''
_ST_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool, "C64": torch.complex64,
}


def read_safetensors(path):
    """Tensors by name from a .safetensors file (8-byte LE header size, JSON header, raw data)."""
    with open(path, "rb") as fh:
        data = fh.read()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = _ST_DTYPES[info["dtype"]]
        raw = bytearray(data[8 + size + begin:8 + size + end])
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(info["shape"])
    return tensors
'''


# ---------------------------------------------------------------------------
# naming


def _ident(name: str) -> str:
    out = "".join(c if (c.isalnum() or c == "_") else "_" for c in name)
    if not out or out[0].isdigit():
        out = "t_" + out
    if keyword.iskeyword(out) or out in ("self", "torch", "json", "os"):
        out += "_"
    return out


def module_attr(node: Node) -> str:
    """The attribute name of a module node's submodule on ``Model``."""
    return _ident(f"{short_name(node.op) or 'op'}_{node.id}")


def tensor_identifiers(graph: Graph) -> dict[str, str]:
    """Python identifiers for every tensor (the graph's names when they are valid identifiers)."""
    names: dict[str, str] = {}
    used = {module_attr(n) for n in graph.nodes if n.api == "module"}
    for t in graph.tensors:
        name = _ident(t)
        while name in used:
            name += "_"
        used.add(name)
        names[t] = name
    return names


# ---------------------------------------------------------------------------
# source


def _call_target(node: Node) -> str:
    if node.api == "aten":
        ns, _, name = node.op.partition("::")
        return f"torch.ops.{ns}.{name}.{node.overload or 'default'}"
    if node.op in hop_fns.HOP_CALLS:  # the program's function around cond or a loop (fuzz.gen.hop_fns)
        return hop_fns.HOP_CALLS[node.op][0]
    return hop_fns.helper_name(node.op) or node.op


def _passed_functions(value) -> set:
    """The ``{"fn": name}`` names inside an encoded argument."""
    if isinstance(value, list):
        return set().union(*map(_passed_functions, value)) if value else set()
    if isinstance(value, dict):
        if "fn" in value:
            return {value["fn"]}
        return _passed_functions(value.get("tuple", [])) | _passed_functions(value.get("args", [])) | \
            _passed_functions(list(value.get("kwargs", {}).values()))
    return set()


def _helper_sources(graph: Graph) -> list[str]:
    """``fuzz.gen.hop_fns`` sources the program carries (the operators it calls and the functions it
    passes them), and ``fuzz.gen.custom_ops``' definitions where it calls one of them."""
    fns = set().union(*(_passed_functions(n.args) | _passed_functions(list(n.kwargs.values())) for n in graph.nodes))
    helpers = hop_fns.program_helpers({n.op for n in graph.nodes if n.api == "function"}, fns)
    if any(n.api == "aten" and custom_ops.is_custom(n.op) for n in graph.nodes):
        helpers.append("\n".join(custom_ops.program_lines()))  # the definitions, then the call registering them
    return helpers


def _extra_imports(graph: Graph) -> list[str]:
    mods = {_module_to_import(node.op) for node in graph.nodes if node.api != "aten"}
    return sorted(m for m in mods if m is not None)


_IMPORT_OF: dict[str, str | None] = {}  # op -> the module its program imports (None: torch's own)


def _module_to_import(op: str) -> str | None:
    """The longest importable module prefix of ``op`` (``torch.nn.functional`` for
    ``torch.nn.functional.relu``), None when ``import torch`` already binds it; once per op."""
    if op in _IMPORT_OF:
        return _IMPORT_OF[op]
    import importlib

    found = None
    parts = op.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        try:
            importlib.import_module(prefix)
        except ImportError:
            continue
        found = None if prefix in _TORCH_ATTR_MODULES else prefix
        break
    _IMPORT_OF[op] = found
    return found


class _Render:
    def __init__(self, graph: Graph, names: dict[str, str], device_expr: str):
        self.graph = graph
        self.names = names
        self.device_expr = device_expr

    def ref(self, tensor: str) -> str:
        name = self.names[tensor]
        return f"self.{name}" if self.graph.tensors[tensor].role == "param" else name

    def value(self, v: Any) -> str:
        if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
            return repr(v)
        if isinstance(v, float):
            if math.isnan(v):
                return "float('nan')"
            if math.isinf(v):
                return "float('inf')" if v > 0 else "float('-inf')"
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(self.value(x) for x in v) + "]"
        if isinstance(v, dict):
            if "ref" in v:
                return self.ref(v["ref"])
            if "tuple" in v:
                items = [self.value(x) for x in v["tuple"]]
                return "(" + items[0] + ",)" if len(items) == 1 else "(" + ", ".join(items) + ")"
            if "float" in v:
                return f"float('{v['float']}')"
            if "complex" in v:
                return f"complex({v['complex'][0]!r}, {v['complex'][1]!r})"
            if "dtype" in v:
                return f"torch.{v['dtype']}"
            if "call" in v:
                return call_text(v, self.value)
            if "fn" in v:
                return _call_target(Node(id="", op=v["fn"], api=v.get("api", "function"), args=[], kwargs={},
                                         outputs=[], overload=v.get("overload")))
            if "enum" in v:
                if v["enum"] == "device":
                    return self.device_expr
                name = v["enum"]
                return name if name.startswith("torch.") else f"torch.{name}"
        raise ValueError(f"cannot render value {v!r}")

    def call(self, target: str, args: list, kwargs: dict) -> str:
        parts = [self.value(a) for a in args] + [f"{k}={self.value(v)}" for k, v in kwargs.items()]
        return f"{target}({', '.join(parts)})"


def _lhs(node: Node, names: dict[str, str]) -> str:
    returns = node.extra.get("returns")
    if returns is None:
        return names[node.outputs[0]] if node.outputs else "_"
    items = [names[r] if r is not None else "_" for r in returns]
    if len(items) == 1:
        return items[0] + ","
    return ", ".join(items)


def program_source(graph: Graph) -> str:
    """The standalone program for ``graph`` (see the module docstring for its layout)."""
    names = tensor_identifiers(graph)
    inputs = graph.inputs
    numbers = python_number_inputs(graph)  # forward takes them as Python numbers: no .device
    first_input = next((names[i] for i in inputs if i not in numbers), None)
    init_r = _Render(graph, names, "torch.device('cpu')")
    fwd_r = _Render(graph, names, f"{first_input}.device" if first_input else "torch.device('cpu')")
    n_sym = sum(1 for n in graph.nodes if n.kind == "symbolic")
    lines = [
        f'"""Generated by assay gen: {len(graph.nodes)} operator calls '
        f'({n_sym} symbolic, {len(graph.nodes) - n_sym} concrete).',
        "",
        "Run it: python program.py  (needs only torch; reads the .safetensors files beside it)",
        '"""',
        "import json",
        "import os",
        "",
        "import torch",
    ]
    lines += [f"import {m}" for m in _extra_imports(graph)]
    lines += ["", 'HERE = os.path.dirname(os.path.abspath(__file__))']
    lines += _writes_line(graph, names)
    lines += _READER.rstrip("\n").split("\n")
    for helper in _helper_sources(graph):
        lines += ["", ""] + helper.strip("\n").split("\n")
    lines += ["", "", "class Model(torch.nn.Module):", "    def __init__(self):", "        super().__init__()"]
    buffers = set(graph.meta.get("buffers", []))  # state a forward writes (fuzz.gen.state_forms)
    for p in graph.params:
        info = graph.tensors[p]
        empty = f"torch.empty({list(info.shape)!r}, dtype=torch.{info.dtype})"
        if _is_float(info.dtype) and p not in buffers:
            lines.append(f"        self.{names[p]} = torch.nn.Parameter({empty})")
        else:
            lines.append(f"        self.register_buffer({names[p]!r}, {empty})")
    for node in graph.nodes:
        if node.api == "module":
            init = node.init or {"args": [], "kwargs": {}}
            lines.append(f"        self.{module_attr(node)} = {init_r.call(node.op, init.get('args', []), init.get('kwargs', {}))}")
    lines += ["", f"    def forward(self{''.join(', ' + names[i] for i in inputs)}):"]
    for node in graph.nodes:
        target = f"self.{module_attr(node)}" if node.api == "module" else _call_target(node)
        line = f"{_lhs(node, names)} = {fwd_r.call(target, node.args, node.kwargs)}"
        region = node.extra.get("autocast")  # the call runs in an autocast region (fuzz.gen.forms)
        if region:
            lines.append(f"        with torch.autocast(device_type={fwd_r.device_expr}.type, dtype=torch.{region}):")
            line = "    " + line
        lines.append("        " + line)
        if node.extra.get("written_result"):  # the call returns nothing: name the input it wrote (fuzz.gen.state_forms)
            lines[-1] = lines[-1].replace(f"{_lhs(node, names)} = ", "_ = ", 1)
            lines.append(f"        {names[node.outputs[0]]} = {names[node.extra['writes']]}")
        if node.extra.get("graph_break"):  # dynamo compiles the calls above and below apart (fuzz.gen.forms)
            lines.append("        torch._dynamo.graph_break()")
    outs = [fwd_r.ref(o) for o in graph.outputs]
    lines.append(f"        return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
    lines += [
        "",
        "",
    ]
    laid_out = input_layouts(graph)
    if laid_out:
        lines += layouts.strided_source().split("\n") + ["", ""]
    lines += [
        "def load_inputs():",
        '    """The saved inputs, in the order Model.forward takes them'
        + (', laid out in memory as the model was tested (not contiguous)' if laid_out else '')
        + ('; numbers forward takes as Python scalars are read from their 0-dim tensors' if numbers else '')
        + '."""',
        '    tensors = read_safetensors(os.path.join(HERE, "inputs.safetensors"))',
        f"    return [{', '.join(_input_expr(names[i], laid_out.get(i), i in numbers) for i in inputs)}]",
        "",
        "",
        "def load_model():",
        '    """Model with the saved weights, in eval mode."""',
        "    model = Model()",
        '    model.load_state_dict(read_safetensors(os.path.join(HERE, "params.safetensors")))',
        "    return model.eval()",
        "",
        "",
        'if __name__ == "__main__":',
        "    model = load_model()",
        "    with torch.no_grad():",
        "        outputs = model(*load_inputs())",
        '    print(f"{len(outputs)} outputs: " + ", ".join(f"{str(o.dtype).replace(\'torch.\', \'\')}{list(o.shape)}" for o in outputs))',
        "",
    ]
    return "\n".join(lines)


def input_layouts(graph: Graph) -> dict:
    """``graph.meta["layouts"]`` (``fuzz.gen.layouts``) for the inputs it fits."""
    given = graph.meta.get("layouts") or {}
    return {i: given[i] for i in graph.inputs
            if i in given and i in graph.tensors and layouts.usable(given[i], len(graph.tensors[i].shape))}


def _input_expr(key: str, layout: dict | None, number: bool = False) -> str:
    if number:
        return f"tensors[{key!r}].item()"
    if layout is None:
        return f"tensors[{key!r}]"
    extra = "".join(f", {k}={layout[k]}" for k in ("step", "pad") if layout.get(k, 0 if k == "pad" else 1)
                    != (0 if k == "pad" else 1))
    extra += f", expand={tuple(layout['expand'])}" if layout.get("expand") else ""
    return f"strided(tensors[{key!r}], order={tuple(layout['order'])}{extra})"


def _writes_line(graph: Graph, names: dict[str, str]) -> list[str]:
    """``WRITES``: the buffers and inputs ``forward`` writes in place (``fuzz.gen.state_forms``),
    as ``(kind, name)``; a repro judges them after each call. Nothing for a model that writes none."""
    writes = [("buffer" if graph.tensors[s].role == "param" else "input", names[s]) for s, _ in written_state(graph)]
    if not writes:
        return []
    return [f"WRITES = {writes!r}  # state forward writes in place: (kind, name), judged after each call"]


def _is_float(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat", "complex"))


# ---------------------------------------------------------------------------
# in-process


_COUNTER = [0]
# (top-level chunk text, its first line) -> code: a program's reader, helpers, loaders and
# ``__main__`` block are the same text in most programs, and compiling them was three quarters of a
# build (0.42 ms a program, 0.11 ms its ``Model`` class alone); only new chunks are compiled.
_CHUNK_CODE: "collections.OrderedDict[tuple[str, int], CodeType]" = collections.OrderedDict()
_CHUNK_CACHE_SIZE = 256


def _as_file(code: CodeType, filename: str) -> CodeType:
    """``code`` (and the functions and classes it defines) reporting ``filename`` in tracebacks."""
    if code.co_filename == filename:
        return code
    consts = tuple(_as_file(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _chunk_codes(source: str, filename: str) -> list[CodeType]:
    """``source`` compiled as its top-level chunks (split at two blank lines), each at its own line
    numbers; a chunk compiled before (same text, same first line) is taken from the cache. Executed in
    order in one namespace they are the module ``compile(source)`` gives (no ``from __future__``)."""
    codes, line = [], 0
    for chunk in source.split("\n\n\n"):
        key = (chunk, line)
        code = _CHUNK_CODE.get(key)
        if code is None:
            code = _CHUNK_CODE[key] = compile("\n" * line + chunk, filename, "exec")
            if len(_CHUNK_CODE) > _CHUNK_CACHE_SIZE:
                _CHUNK_CODE.popitem(last=False)
        else:
            _CHUNK_CODE.move_to_end(key)
        codes.append(_as_file(code, filename))
        line += chunk.count("\n") + 3
    return codes


# The modules of the programs executed last, by name, also in ``sys.modules``: a bound on what
# they keep alive (helpers and classes, not weights) in a worker that builds thousands.
_MODULES: "collections.OrderedDict[str, ModuleType]" = collections.OrderedDict()
MODULES_KEPT = 64


def exec_source(source: str, filename: str | None = None) -> dict:
    """Execute program source as a module of its own (``__name__`` is not ``__main__``); returns its
    namespace. The module is importable by its name (``assay_program_<n>``) while it is one of the
    last ``MODULES_KEPT`` executed: dynamo imports the module of a function it inlines into a frame
    with other globals (a scan's combine function called from torch's own code), and a program
    that no import could find raised ``ModuleNotFoundError: No module named 'assay_program'`` in
    export where its repro.py (run as ``__main__``) agreed: a false crash of the s26b campaign."""
    import sys

    _COUNTER[0] += 1
    if filename is None:
        filename = f"<assay-program-{_COUNTER[0]}>"
        # Keep tracebacks and inspect working for in-memory programs.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = ModuleType(f"assay_program_{_COUNTER[0]}")
    module.__file__ = filename
    namespace = module.__dict__
    for code in _chunk_codes(source, filename):
        exec(code, namespace)
    sys.modules[module.__name__] = _MODULES[module.__name__] = module
    while len(_MODULES) > MODULES_KEPT:
        sys.modules.pop(_MODULES.popitem(last=False)[0], None)
    return namespace


def state_dict_keys(graph: Graph) -> list[str]:
    """Names the model's state dict will have for the graph's own parameters."""
    names = tensor_identifiers(graph)
    return [names[p] for p in graph.params]


def build_module(graph: Graph, params: dict | None = None, source: str | None = None):
    """``Model`` from ``program_source(graph)``, in eval mode.

    ``params`` maps state-dict keys (graph parameter names, ``<submodule>.<weight>``)
    to tensors; missing graph parameters are filled with seeded standard-normal
    values (integers: small non-negative), so the module never holds uninitialised memory.
    """
    import torch

    ns = exec_source(source or program_source(graph))
    torch_state = torch.random.get_rng_state()
    try:
        # submodule default init: deterministic. The CPU generator the constructors draw from,
        # directly: torch.manual_seed also seeds every accelerator (0.3 ms, a third of a build)
        torch.default_generator.manual_seed(0)
        model = ns["Model"]()
    finally:
        torch.random.set_rng_state(torch_state)
    state = model.state_dict()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, t in state.items():
            if params is not None and key in params:
                continue
            if key in state_dict_keys(graph):
                if t.dtype.is_floating_point:
                    t.copy_(torch.randn(t.shape, generator=gen, dtype=torch.float32).to(t.dtype))
                elif t.dtype == torch.bool:
                    t.copy_(torch.randint(0, 2, t.shape, generator=gen).bool())
                else:
                    t.copy_(torch.randint(0, 3, t.shape, generator=gen).to(t.dtype))
    if params:
        model.load_state_dict({k: v for k, v in params.items() if k in state}, strict=False)
    return model.eval()


def run_eager(module, inputs) -> list:
    """Run the model without autograd; the outputs as a list of tensors."""
    import torch

    with torch.no_grad():
        out = module(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def split_tensors(graph: Graph, tensors: dict) -> tuple[dict, dict]:
    """(inputs, params) from one dict: graph inputs by name; everything else is state dict."""
    inputs = {k: v for k, v in tensors.items() if k in graph.inputs}
    params = {k: v for k, v in tensors.items() if k not in graph.inputs}
    return inputs, params


def save_program(graph: Graph, tensors: dict, out_dir) -> Path:
    """Write ``graph.json``, ``program.py``, ``inputs.safetensors`` and ``params.safetensors``.

    ``tensors`` maps graph input names and state-dict keys (graph parameter names,
    ``<submodule>.<weight>``) to tensors; it may also be a ``(inputs, state_dict)`` pair
    or a dict with a ``Model`` under the key ``"model"``.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(tensors, tuple):
        inputs, params = tensors
        if isinstance(inputs, (list, tuple)):
            inputs = dict(zip(graph.inputs, inputs))
    else:
        tensors = dict(tensors)
        model = tensors.pop("model", None)
        inputs, params = split_tensors(graph, tensors)
        if model is not None:
            params = {**model.state_dict(), **params}
    missing = [i for i in graph.inputs if i not in inputs]
    if missing:
        raise ValueError(f"save_program: no tensor for graph inputs {missing}")
    names = tensor_identifiers(graph)

    def prep(d):
        return {k: v.detach().to("cpu").contiguous().clone() for k, v in d.items()}

    (out / "graph.json").write_text(graph.dumps() + "\n")
    (out / "program.py").write_text(program_source(graph))
    save_file(prep({names[k]: v for k, v in inputs.items() if k in graph.inputs}), str(out / "inputs.safetensors"))
    save_file(prep({names.get(k, k): v for k, v in params.items()}), str(out / "params.safetensors"))
    return out


def load_program(path) -> tuple[Graph, Any, list]:
    """``(graph, module, inputs)`` from a saved program directory, running its own program.py code."""
    path = Path(path)
    graph = Graph.loads((path / "graph.json").read_text())
    prog = path / "program.py"
    ns = exec_source(prog.read_text(), filename=str(prog.resolve()))
    return graph, ns["load_model"](), ns["load_inputs"]()


def program_files(out_dir) -> list[str]:
    return [os.path.join(out_dir, f) for f in PROGRAM_FILES]


def dumps_summary(graph: Graph) -> str:
    return json.dumps({"nodes": len(graph.nodes), "inputs": len(graph.inputs), "params": len(graph.params)})
