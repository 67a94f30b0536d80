"""Where valid (and invalid) calls come from: OpInfo, ModuleInfo, the dispatcher, mutation.

One *task* is one OpInfo entry (``("opinfo", index)`` into ``op_db``) or one
ModuleInfo entry (``("module", index)`` into ``module_db``). ``run_task`` runs
its samples for a few dtypes, records the Python-level call (``function`` or
``module`` record) and every distinct aten call the dispatcher saw
(``aten`` records, via a ``TorchDispatchMode``), runs the OpInfo's error inputs,
then mutates the recorded calls and records the mutants' outcomes.
"""

from __future__ import annotations

import inspect
import itertools
import json
import random
import time
import warnings
import zlib
from dataclasses import asdict, dataclass

from fuzz.ir.record import Unrecordable, dtype_name, resolve_op
from fuzz.tracing.calls import Skip, encode_call, encode_outputs, error_dict, is_environment_error, run_encoded
from fuzz.tracing.mutate import mutants, value_pools

EXTRA_DTYPES = ("float64", "float16", "bfloat16", "int64", "int32", "bool", "uint8", "complex64")


@dataclass
class Config:
    """How much of each source to record (per operator)."""

    seed: int = 0
    max_samples: int = 8
    extra_samples: int = 2
    max_error_inputs: int = 8
    mutate_records: int = 6
    mutants_per_record: int = 20
    aten_mutate_records: int = 3
    aten_mutants_per_record: int = 12
    deadline: float | None = None  # soft: stop mutating after this time.monotonic()

    def to_json(self):
        return asdict(self)


def _db():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.testing._internal.common_methods_invocations import op_db
        from torch.testing._internal.common_modules import module_db
    return op_db, module_db


def task_list():
    """``[(task, display name), ...]`` for every OpInfo and ModuleInfo, in database order."""
    op_db, module_db = _db()
    tasks = []
    for i, op in enumerate(op_db):
        label = op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")
        tasks.append((("opinfo", i), label))
    for i, mi in enumerate(module_db):
        label = mi.name + (f".{mi.variant_name}" if getattr(mi, "variant_name", "") else "")
        tasks.append((("module", i), label))
    return tasks


def task_names(task) -> set[str]:
    """Names a user may give in ``--ops`` for a task: ``conv2d``-style OpInfo names, ``nn.Conv2d``..."""
    op_db, module_db = _db()
    kind, i = task
    if kind == "opinfo":
        op = op_db[i]
        names = {op.name}
        if op.variant_test_name:
            names.add(f"{op.name}.{op.variant_test_name}")
        return names
    mi = module_db[i]
    cls = mi.module_cls
    return {mi.name, f"torch.nn.{cls.__name__}", cls.__name__}


# ---------------------------------------------------------------------------
# naming


def function_path(op) -> str | None:
    """An import path that ``resolve_op`` maps to this OpInfo's callable, or None (lambdas, wrappers)."""
    fn = op.op
    fname = getattr(fn, "__name__", "")
    if fname == "<lambda>" or not fname:
        return None
    candidates = [f"torch.{op.name}"]
    mod = getattr(fn, "__module__", None)
    if mod and mod.startswith("torch"):
        candidates.append(f"{mod}.{getattr(fn, '__qualname__', fname)}")
    candidates.append(f"torch.{fname}")
    for path in candidates:
        try:
            target = resolve_op(path, "function")
        except Exception:
            continue
        if target is fn:
            return path
        # Public builtins re-exported under another name (torch.nn.functional.conv2d is torch.conv2d's twin).
        if path == candidates[0] and callable(target) and getattr(target, "__name__", None) == fname:
            return path
    return None


# OpInfos whose callable is a lambda that only calls the public function of the OpInfo's name with
# the same arguments (scaled_dot_product_attention's wraps it in an SDPA-backend context manager,
# for CUDA): their samples are recorded as calls of that function, called directly.
PUBLIC_TWINS = {"nn.functional.scaled_dot_product_attention"}


def function_target(op):
    """``(import path, callable)`` for an OpInfo's Python-level call, or ``(None, op.op)``.

    The OpInfo's own callable when it has a resolvable path; the public function of its name for
    the lambdas of ``PUBLIC_TWINS``; else its Tensor method variant (``torch.Tensor.view``) when
    that resolves -- many OpInfos wrap methods in lambdas.
    """
    path = function_path(op)
    if path is not None:
        return path, op.op
    if op.name in PUBLIC_TWINS:
        return f"torch.{op.name}", resolve_op(f"torch.{op.name}", "function")
    method = getattr(op, "method_variant", None)
    mname = getattr(method, "__name__", "")
    if method is not None and mname and mname != "<lambda>":
        try:
            if resolve_op(f"torch.Tensor.{mname}", "function") is method:
                return f"torch.Tensor.{mname}", method
        except Exception:
            pass
    return None, op.op


def module_path(cls) -> str | None:
    import torch

    if getattr(torch.nn, cls.__name__, None) is cls:
        return f"torch.nn.{cls.__name__}"
    return None


# ---------------------------------------------------------------------------
# the dispatcher's view


def _recorder_class():
    from torch.utils._python_dispatch import TorchDispatchMode

    class AtenRecorder(TorchDispatchMode):
        """Records each distinct aten call (name + encoded arguments) and its outcome."""

        def __init__(self):
            super().__init__()
            self.records: list[dict] = []
            self.seen: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            enc = None
            if func.namespace == "aten":
                try:
                    enc = encode_call(args, kwargs)
                except Unrecordable:
                    enc = None
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                if enc is not None and not is_environment_error(exc):
                    self._add(func, enc, False, error_dict(exc))
                raise
            if enc is not None:
                try:
                    self._add(func, enc, True, encode_outputs(result))
                except Unrecordable:
                    pass
            return result

        def _add(self, func, enc, ok, outcome):
            rec = {"op": func._schema.name, "kind": "aten", "overload": func._overloadname or "default",
                   "args": enc[0], "kwargs": enc[1], "ok": ok, "source": "dispatch"}
            rec["out" if ok else "error"] = outcome
            key = json.dumps([rec["op"], rec["overload"], rec["args"], rec["kwargs"]], sort_keys=True)
            if key not in self.seen:
                self.seen.add(key)
                self.records.append(rec)

    return AtenRecorder


def _record_call(kind, op_path, call_fn, args, kwargs, source, recorder_cls, init=None):
    """Run one Python-level call under the aten recorder. Returns the new records."""
    out: list[dict] = []
    try:
        enc = encode_call(args, kwargs) if op_path else None
    except Unrecordable:
        enc = None
    recorder = recorder_cls()
    ok, outcome = True, None
    try:
        with recorder:
            result = call_fn()
        try:
            outcome = encode_outputs(result)
        except Unrecordable:
            enc = None
    except Exception as exc:
        if is_environment_error(exc):
            enc = None
        ok, outcome = False, error_dict(exc)
    if enc is not None:
        rec = {"op": op_path, "kind": kind, "args": enc[0], "kwargs": enc[1], "ok": ok, "source": source}
        if init is not None:
            rec["init"] = init
        rec["out" if ok else "error"] = outcome
        out.append(rec)
    out.extend(recorder.records)
    return out


def _seed_for(cfg, *parts) -> int:
    return (cfg.seed * 1_000_003 + zlib.crc32("/".join(map(str, parts)).encode())) & 0x7FFFFFFF


# ---------------------------------------------------------------------------
# tasks


def _dtype_plan(supported, cfg, torch):
    plan = []
    names = {dtype_name(d) for d in supported}
    if "float32" in names:
        plan.append((torch.float32, cfg.max_samples))
    elif supported:
        plan.append((sorted(supported, key=str)[0], cfg.max_samples))
    for name in EXTRA_DTYPES:
        if name in names and cfg.extra_samples > 0:
            plan.append((getattr(torch, name), cfg.extra_samples))
    return plan


def _opinfo_records(op, cfg, recorder_cls):
    import torch

    path, fn = function_target(op)
    records: list[dict] = []
    for dtype, n in _dtype_plan(op.supported_dtypes("cpu"), cfg, torch):
        torch.manual_seed(_seed_for(cfg, op.name, op.variant_test_name, dtype))
        try:
            samples = iter(op.sample_inputs("cpu", dtype, requires_grad=False))
            for sample in itertools.islice(samples, n):
                args = [sample.input, *sample.args]
                kwargs = dict(sample.kwargs)
                records.extend(_record_call("function", path, lambda: fn(*args, **kwargs), args, kwargs,
                                            "opinfo", recorder_cls))
        except Exception:
            continue  # a sample generator that fails for this dtype: keep what it gave
    torch.manual_seed(_seed_for(cfg, op.name, op.variant_test_name, "errors"))
    try:
        for ei in itertools.islice(iter(op.error_inputs("cpu")), cfg.max_error_inputs):
            sample = ei.sample_input
            args = [sample.input, *sample.args]
            kwargs = dict(sample.kwargs)
            records.extend(_record_call("function", path, lambda: fn(*args, **kwargs), args, kwargs,
                                        "opinfo_error", recorder_cls))
    except Exception:
        pass
    return records


def _module_records(mi, cfg, recorder_cls):
    import torch

    cls = mi.module_cls
    path = module_path(cls)
    if path is None:
        return []
    try:
        takes_dtype = "dtype" in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        takes_dtype = False
    records: list[dict] = []
    for dtype in mi.dtypes if hasattr(mi, "dtypes") else (torch.float32,):
        n = cfg.max_samples if dtype == torch.float32 else cfg.extra_samples
        torch.manual_seed(_seed_for(cfg, mi.name, dtype))
        try:
            inputs = mi.module_inputs_func(mi, device="cpu", dtype=dtype, requires_grad=False, training=False)
            for mip in itertools.islice(iter(inputs), n):
                if mip.forward_input is None:
                    continue
                cargs, ckwargs = list(mip.constructor_input.args), dict(mip.constructor_input.kwargs)
                if dtype != torch.float32:
                    if takes_dtype:
                        ckwargs["dtype"] = dtype
                    else:
                        probe = cls(*cargs, **ckwargs)
                        if any(True for _ in itertools.chain(probe.parameters(), probe.buffers())):
                            continue  # its parameters would stay float32: not replayable from the record
                try:
                    ienc = encode_call(cargs, ckwargs)
                except Unrecordable:
                    continue
                fargs, fkwargs = list(mip.forward_input.args), dict(mip.forward_input.kwargs)

                def call(cargs=cargs, ckwargs=ckwargs, fargs=fargs, fkwargs=fkwargs):
                    m = cls(*cargs, **ckwargs)
                    m.eval()
                    return m(*fargs, **fkwargs)

                records.extend(_record_call("module", path, call, fargs, fkwargs, "moduleinfo", recorder_cls,
                                            init={"args": ienc[0], "kwargs": ienc[1]}))
        except Exception:
            continue
    return records


def _call_of(rec: dict) -> dict:
    call = {"op": rec["op"], "kind": rec["kind"], "args": rec["args"], "kwargs": rec["kwargs"]}
    if rec.get("overload") is not None:
        call["overload"] = rec["overload"]
    if rec.get("init") is not None:
        call["init"] = rec["init"]
    return call


def _replay_device(rec: dict) -> str | None:
    """``"meta"`` if the record replays identically on meta tensors, else ``"cpu"`` if it does on
    small random CPU tensors, else None (not mutated)."""
    want = (rec["ok"], rec.get("out") if rec["ok"] else rec["error"]["type"])
    for device in ("meta", "cpu"):
        try:
            ok, outcome = run_encoded(_call_of(rec), device)
        except Skip:
            continue
        except Exception:
            continue
        if (ok, outcome if ok else outcome["type"]) == want:
            return device
    return None


def _mutation_records(records, cfg, rng):
    """Mutants of this task's recorded calls, run where the original replays faithfully.
    Yields one list of records per mutated operator."""
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        if rec["ok"]:
            groups.setdefault((rec["kind"], rec["op"], rec.get("overload")), []).append(rec)
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2] or "")):
        if cfg.deadline is not None and time.monotonic() > cfg.deadline:
            break
        out: list[dict] = []
        recs = groups[key]
        is_aten = key[0] == "aten"
        n_rec = cfg.aten_mutate_records if is_aten else cfg.mutate_records
        per = cfg.aten_mutants_per_record if is_aten else cfg.mutants_per_record
        # Spread over distinct signatures first: the recorded calls with different argument structures.
        pools = value_pools([_call_of(r) for r in recs])
        chosen, sigs = [], set()
        for r in recs:
            sig = json.dumps([len(r["args"]), sorted(r["kwargs"])])
            if sig not in sigs:
                sigs.add(sig)
                chosen.append(r)
        chosen += [r for r in recs if r not in chosen]
        for rec in chosen[:n_rec]:
            device = _replay_device(rec)
            if device is None:
                continue
            for mkind, call in mutants(_call_of(rec), pools, rng, per):
                if cfg.deadline is not None and time.monotonic() > cfg.deadline:
                    break
                try:
                    ok, outcome = run_encoded(call, device)
                except Exception:
                    continue
                extra = {"mutation": mkind, "device": device}
                if ok and device == "meta":
                    # Meta kernels can be laxer than the CPU kernels (e.g. aten::convolution on meta
                    # accepts a 5-d weight with 2-d strides). A call meta accepts is confirmed on small
                    # real tensors when it fits; the real outcome wins.
                    try:
                        rok, routcome = run_encoded(call, "cpu")
                    except Exception:
                        rok = None
                    if rok is False:
                        ok, outcome = False, routcome
                        extra = {"mutation": mkind, "device": "cpu", "meta_accepts": True}
                m = dict(call)
                m.update({"ok": ok, "source": "mutation", "extra": extra})
                m["out" if ok else "error"] = outcome
                out.append(m)
        # One chunk per operator: a crash in a later operator's mutants loses only that operator's.
        yield out


def run_task(task, cfg: Config):
    """All records of one task, as JSON-ready dicts. Yields them in chunks (samples, then mutants)."""
    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    op_db, module_db = _db()
    recorder_cls = _recorder_class()
    kind, i = task
    if kind == "opinfo":
        op = op_db[i]
        records = _opinfo_records(op, cfg, recorder_cls)
        label = op.name + op.variant_test_name
    else:
        mi = module_db[i]
        records = _module_records(mi, cfg, recorder_cls)
        label = mi.name
    yield records
    rng = random.Random(_seed_for(cfg, "mutate", label))
    torch.manual_seed(_seed_for(cfg, "mutate-values", label))
    yield from _mutation_records(records, cfg, rng)
    if cfg.deadline is not None and time.monotonic() > cfg.deadline:
        return "mutation cut short by the time budget"
    return None
