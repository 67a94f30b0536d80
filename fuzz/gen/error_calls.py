"""Programs whose call eager rejects (``ModelPolicy.calls == "invalid"``, ``--calls``).

A compiler must reject what eager rejects: a compiled program that returns values where eager
raises (a shape check, an index bound, an argument check that a decomposition or lowering
dropped) gives a user garbage silently. Every other model is valid, so a campaign never asked.

The calls come from the corpus, as everything the generator makes does: the tracer records
invalid calls beside valid ones (PyTorch's own OpInfo ``error_inputs``, and mutants of valid
calls that eager refused). ``error_model(seed, index)`` turns one into a one-call program: each
recorded tensor argument becomes a graph input of its recorded shape and dtype (values drawn,
ints small and non-negative), everything else is the recorded argument. It is kept when eager
raises on it, twice, with an error of a checked kind (``ERROR_TYPES``) and a message that says
the arguments are wrong, not that eager lacks a kernel (``NOT_A_CHECK``: a compiled program may
well support a dtype eager does not; nor eager's own kernel failing to write its internal
output, an inconsistency inside eager). Private operators (``aten::_softmax_backward_data``), calls
with an empty input (an empty result is no garbage), ``out=`` and in-place variants, random,
storage and I/O calls, complex dtypes and raising module constructors are left out.
``graph.meta["eager_raises"]`` holds eager's error; the campaign then expects every backend to
raise too (``fuzz.campaign.error_session.ErrorSession``).
"""

from __future__ import annotations

import json
import random

from fuzz.gen.config import GenerationError
from fuzz.gen.ruleset import DEFAULT_DTYPES
from fuzz.ir.graph import Graph, Node

ERROR_TYPES = ("RuntimeError", "ValueError", "IndexError")
# eager lacks something (a kernel for a dtype or a dtype mix: a compiled program that computes it
# anyway is more permissive, not wrong), eager itself fails (an internal assert), or the failure is
# not about the call's arguments
NOT_A_CHECK = ("not implemented", "not yet implemented", "not supported", "unsupported", "deterministic",
               "out of memory", "allocate", "no kernel", "could not run", "is not available", "undefined symbol",
               "cuda", "mps", "xpu", "backend", "internal assert", "dtype", "type", "floating point", "complex",
               "datatype", "data type", "mixed", "promot", "half", "float", "double", "int64", "long", "bool",
               "empty",  # an empty result for an empty input: not garbage
               # eager's own kernel failing to write its internal output (softmargin loss, logsumexp of no
               # dims): an inconsistency inside eager, not a check of the call's arguments
               "doesn't match the broadcast shape",
               # a kernel reading an argument through an accessor of the rank it assumed (batch norm's
               # running_var of shape [1, 1]): the kernel's own assumption failing, not a check a
               # compiled program must repeat (the thirteenth session's default campaign)
               "tensoraccessor expected")
# random, uninitialised, I/O or storage-level calls: not a program a compiler is asked to match
SKIP_OPS = ("empty", "rand", "normal", "bernoulli", "multinomial", "dropout", "set_", "storage", "as_strided",
            "resize", "save", "load", "numpy", "tolist", "item", "_local_scalar", "print", "manual_seed")
TRIES = 6

_RECORDS: dict = {}


def error_records(path=None) -> list:
    """The corpus's invalid calls fit for an error program, read once per process (in corpus order)."""
    from fuzz.ir.record import iter_tensor_values, read_records
    from fuzz.ir.rule import corpus_dir

    key = str(path)
    if key not in _RECORDS:
        p = path or corpus_dir() / "traces.jsonl.gz"
        out = []
        for r in read_records(p):
            err = r.error or {}
            msg = str(err.get("message", "")).lower()
            if r.ok or err.get("type") not in ERROR_TYPES or any(m in msg for m in NOT_A_CHECK):
                continue
            if "out" in r.kwargs or (r.overload or "").endswith("out") or "out" in (r.overload or "").split("_"):
                continue  # out= variants: what they write is not the program's output (generation leaves them out too)
            last = r.op.rsplit(".", 1)[-1].rsplit("::", 1)[-1].lower()
            if any(s in last for s in SKIP_OPS) or last.endswith("_") and not last.endswith("__"):
                continue
            if last.startswith("_"):
                continue  # a private operator (aten::_softmax_backward_data): what it checks is internal
            if r.kind == "module" and any(True for _ in iter_tensor_values(r.init or {})):
                continue
            if any(0 in t["T"] for t in iter_tensor_values([r.args, r.kwargs])):
                continue  # an empty input: a compiled program returning an empty result is no garbage
            dtypes = [t["dtype"] for t in iter_tensor_values([r.args, r.kwargs])]
            if not dtypes or any(d not in DEFAULT_DTYPES for d in dtypes):
                continue  # a compiled function needs a tensor to be handed; complex and odd dtypes are out, as in generation
            if "complex" in json.dumps([r.args, r.kwargs, r.init]):
                continue
            out.append(r)
        _RECORDS[key] = out
    return _RECORDS[key]


def _graph_of(record) -> Graph:
    """The one-call graph of ``record``: its tensors as inputs ``x_0, x_1...``, its output ``out``."""
    g = Graph()

    def lift(v):
        if isinstance(v, list):
            return [lift(x) for x in v]
        if isinstance(v, dict):
            if "T" in v:
                name = g.add_tensor(v["T"], v["dtype"], "input", name=f"x_{len(g.tensors)}")
                return {"ref": name}
            if "tuple" in v:
                return {"tuple": [lift(x) for x in v["tuple"]]}
        return v

    args = lift(record.args)
    kwargs = {k: lift(v) for k, v in record.kwargs.items()}
    g.add_tensor([], "float32", name="out")  # what the call would return: nothing does
    g.add_node(Node(id="n0", op=record.op, api=record.kind, overload=record.overload, args=args, kwargs=kwargs,
                    outputs=["out"], kind="concrete", init=record.init))
    g.outputs = ["out"]
    return g


def _values(g: Graph, seed: int) -> dict:
    import torch

    from fuzz.gen.values import sample_leaf

    gen = torch.Generator().manual_seed(seed)
    return {n: sample_leaf(g.tensors[n], gen, (-2.0, 2.0), 4) for n in g.inputs}


def eager_error(g: Graph, tensors: dict, state: dict | None = None) -> dict | None:
    """Eager's error on the program (``{"type", "message"}``), or None when it runs; ``state``, when
    given, receives the module's state dict (a submodule's weights and buffers)."""
    import torch

    from fuzz.gen.program import build_module, run_eager
    from fuzz.isolation import address_space_headroom

    module = build_module(g, {})  # a constructor that raises is no call to compile: the caller skips it
    if state is not None:
        state.update({k: v.detach().clone() for k, v in module.state_dict().items()})
    try:
        with address_space_headroom(512 << 20), torch.no_grad():
            run_eager(module, [tensors[i].clone() for i in g.inputs])
    except Exception as exc:  # noqa: BLE001 - what we are after
        return {"type": type(exc).__name__, "message": str(exc).strip()[:500]}
    return None


def error_model(seed: int, index: int, records: list | None = None) -> tuple[Graph, dict, dict]:
    """Error program ``index`` of a run seeded ``seed``: ``(graph, input tensors, state dict)``; GenerationError
    when no record drawn for it gives one (``TRIES`` draws)."""
    records = error_records() if records is None else records
    if not records:
        raise GenerationError("the corpus holds no invalid call fit for an error program")
    rng = random.Random(f"assay-errors:{seed}:{index}")
    last = "no record tried"
    for _ in range(TRIES):
        record = records[rng.randrange(len(records))]
        try:
            g = _graph_of(record)
        except ValueError as exc:
            last = str(exc)
            continue
        tensors = _values(g, rng.randrange(1 << 31))
        if any(t.is_complex() for t in tensors.values()):
            continue
        try:
            state: dict = {}
            first = eager_error(g, tensors, state)
        except Exception as exc:  # noqa: BLE001 - the module's constructor raised
            last = f"{record.name}: constructor raised {type(exc).__name__}"
            continue
        if first is None or first["type"] not in ERROR_TYPES or any(m in first["message"].lower() for m in NOT_A_CHECK):
            last = f"{record.name}: eager {'runs' if first is None else 'raises ' + first['type']}"
            continue
        if any(t.is_complex() or str(t.dtype).replace("torch.", "") not in DEFAULT_DTYPES for t in state.values()):
            last = f"{record.name}: a weight of a dtype programs do not hold"
            continue
        again = eager_error(g, tensors)
        if again is None or again["type"] != first["type"]:
            last = f"{record.name}: eager raises only sometimes"
            continue
        g.meta.update({"generator": "assay", "eager_raises": first, "source_record": record.source,
                       "policy": {"calls": "invalid"}})
        return g, tensors, state
    raise GenerationError(f"no error program for model {index}: {last}")
