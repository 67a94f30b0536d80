"""A long-lived test worker: one model at a time, every backend and mode on it.

The campaign starts workers as child processes (``python -m fuzz.campaign.worker``, see
``fuzz.campaign.executor``); each imports torch and warms the backends up once, then reads
*jobs* (one JSON object per line on stdin) and writes *events* (one JSON object per
line on the result pipe). Nothing under test runs in the driver.

A job::

    {"job": "s1-m000042", "model": 42, "seed": 1, "nodes": 5,
     "source": {"gen": {"seed": 1234}} | {"program_dir": "/path/to/program"},
     "tests": [{"test": "s1-m000042-inductor-fwd", "backend": "inductor", "mode": "fwd"}, ...],
     "device": "cpu", "timeout_s": 60}

Events, in order, for one job::

    {"event": "begin", "job", "test": null, "phase": "prepare"}
    {"event": "model", "job", "model", "ops": [...], "nodes": n, "files": {name: base64}}  (or "ok": false)
    {"event": "begin", "job", "test", "phase": "test"}                   per test, then
    {"event": "verdict", "job", "test", "backend", "mode", "kind", "detail", "error", "diff", ...}
    {"event": "done", "job"}

``kind`` is one of pass, crash, mismatch, oom (an allocation failure raised inside the
worker), invalid (eager itself fails: not a compiler bug), genfail (the generator could
not make this model: no test ran), unsupported (the backend
declines the model or mode, e.g. export of data-dependent shapes), skip. The driver
synthesises hang, signal and oom verdicts for a test whose worker died or was killed.

The model is built once per job and shared: one eager run (all intermediates), one
float64 run, two perturbed float64 runs for the oracle, and one backward pass for
``bwd``; each backend then compiles its own copy of the module.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from fuzz.campaign import oracle
from fuzz.isolation import limit_address_space

UNSUPPORTED_MARKERS = ("data-dependent", "data dependent", "unsupported", "not supported", "guardondatadependent",
                       "dynamic shape operator", "constraint violation")
# An exported program (export, aoti) checks its inputs against the shapes it was exported for; a
# second call at sizes it specialised on is refused by design, not a bug.
INPUT_GUARD_MARKERS = ("expected input at", "runtime assertion failed", "unmatched dim value", "dim value is too",
                       "guard failed")
# Dynamic mode's second call: its inputs are saved in inputs.safetensors under these keys.
SECOND_CALL_PREFIX = "second_call."


def _error(exc: BaseException) -> dict:
    return {"type": f"{type(exc).__module__}.{type(exc).__qualname__}".replace("builtins.", ""),
            "message": str(exc)[:4000],
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-12000:]}


# ---------------------------------------------------------------------------
# models


def generate_model(seed: int, index: int, nodes: int):
    """(graph, tensors) of model ``index`` of a campaign with ``seed`` (same as ``assay gen --seed``)."""
    from fuzz.gen import generate as gen

    ruleset = _ruleset()
    cfg = gen.GenConfig(nodes=nodes)
    if hasattr(gen, "generate_model_for_index"):
        result = gen.generate_model_for_index(ruleset, cfg, seed, index)
    else:  # pragma: no cover - older generator
        import random

        result = gen.generate(ruleset, cfg, gen.RandomChooser(random.Random(seed * 1_000_003 + index)))
    return result.graph, result.tensors()


_RULESET: list = []


def _ruleset():
    if not _RULESET:
        from fuzz.gen import generate as gen
        from fuzz.ir.rule import load_rules

        _RULESET.append(gen.RuleSet(load_rules()))
    return _RULESET[0]


class Model:
    """A model ready for testing: graph, module, inputs and the files a case needs."""

    def __init__(self, graph, module, inputs, files: dict[str, bytes]):
        self.graph = graph
        self.module = module
        self.inputs = inputs
        self.files = files


def load_model(job: dict) -> Model:
    from fuzz.gen import program

    source = job["source"]
    if "program_dir" in source:
        path = Path(source["program_dir"])
        graph, module, inputs = program.load_program(path)
        files = {name: (path / name).read_bytes() for name in program.PROGRAM_FILES}
        return Model(graph, module, inputs, files)
    if "gen" in source:
        gen = source["gen"]
        graph, tensors = generate_model(int(gen["seed"]), int(gen["index"]), int(job.get("nodes", 5)))
        with tempfile.TemporaryDirectory(prefix="assay-model-") as tmp:
            program.save_program(graph, tensors, tmp)
            files = {name: (Path(tmp) / name).read_bytes() for name in program.PROGRAM_FILES}
            # Run exactly what was saved: the program's own code and tensors.
            graph, module, inputs = program.load_program(tmp)
        return Model(graph, module, inputs, files)
    raise ValueError(f"job has no model source: {source}")


# ---------------------------------------------------------------------------
# running one model


def _clone(inputs, device, dtype64=False, requires_grad=False, noise=None, gen=None):
    import torch

    out = []
    for t in inputs:
        t = t.detach().to(device).clone()
        if t.dtype.is_floating_point:
            if noise is not None:
                rel = oracle.PERTURB.get(str(t.dtype).replace("torch.", ""), 1e-6)
                t = t * (1 + rel * (torch.rand(t.shape, generator=gen, dtype=torch.float64).to(device) * 2 - 1)).to(t.dtype)
            if dtype64:
                t = t.to(torch.float64)
            if requires_grad:
                t.requires_grad_(True)
        out.append(t)
    return out


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _to64(module):
    import torch

    m = copy.deepcopy(module)
    return m.to(torch.float64)


def _perturbed(module, seed):
    import torch

    m = copy.deepcopy(module)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in list(m.parameters()) + list(m.buffers()):
            if p.dtype.is_floating_point:
                rel = oracle.PERTURB.get(str(p.dtype).replace("torch.", ""), 1e-6)
                p.mul_(1 + rel * (torch.rand(p.shape, generator=gen, dtype=torch.float64).to(p.device) * 2 - 1).to(p.dtype))
    return m.to(torch.float64), gen


class Session:
    """References for one model, shared by all its tests."""

    def __init__(self, model: Model, device: str = "cpu"):
        from fuzz.gen import program

        self.model = model
        self.device = device
        self.module = model.module.to(device)
        graph = model.graph
        # Every intermediate value, for the oracle's "which values may differ" analysis.
        full = graph.copy()
        full.outputs = list(dict.fromkeys([o for n in graph.nodes for o in n.outputs] + graph.outputs))
        self.full_names = full.outputs
        state = self.module.state_dict()
        self.full_module = program.build_module(full, {k: v.detach().cpu() for k, v in state.items()}).to(device)

        # Inputs by name: graph.json's tensor order need not be the order Model.forward takes them in.
        self.input_names = _param_names(self.module.forward)
        self.eager_out, eager_env, self.ref_env, self.sensitive, self.fwd_ref = self._references(model.inputs)
        # Gradients are judged unless a float value may differ or a tie decides where a gradient flows.
        self.bwd_blockers = {n: why for n, why in self.sensitive.items()
                             if n in eager_env and (oracle.is_float(eager_env[n]) or oracle.routes_gradient(graph, n))}
        self._bwd_ref = None
        self._bwd_error = None
        self._second = None

    def _references(self, inputs, prefix: str = ""):
        """For these inputs: eager outputs, the eager and float64 environments (every intermediate),
        the values that may legitimately differ, and the forward ``Reference`` (value names
        ``<prefix>out<i>``)."""
        import torch

        graph = self.model.graph
        device = self.device
        by_name = dict(zip(self.input_names, inputs))
        full_inputs = [by_name[n] for n in _param_names(self.full_module.forward)]
        with torch.no_grad():
            eager_out = _as_list(copy.deepcopy(self.module)(*_clone(inputs, device)))
            eager_env = dict(zip(self.full_names, _as_list(self.full_module(*_clone(full_inputs, device)))))
        ref_env = None
        perturbed = []
        try:
            with torch.no_grad():
                m64 = _to64(self.full_module)
                ref_env = dict(zip(self.full_names, _as_list(m64(*_clone(full_inputs, device, dtype64=True)))))
                for seed in (1, 2):
                    pm, gen = _perturbed(self.full_module, seed)
                    outs = _as_list(pm(*_clone(full_inputs, device, dtype64=True, noise=True, gen=gen)))
                    perturbed.append(dict(zip(self.full_names, outs)))
        except Exception:  # float64 not supported by some op: judge against eager, looser
            ref_env = None
        # Graph inputs too, so the oracle can re-run a single node on them.
        eager_env = {**{n: v for n, v in by_name.items() if n in graph.tensors}, **eager_env}
        sensitive = oracle.sensitive_tensors(graph, eager_env, ref_env, perturbed)
        # Two eager runs already happened (module, full module): an output they disagree on is
        # nondeterministic in eager itself (e.g. uninitialised memory), so no backend can match it.
        for o, first in zip(graph.outputs, eager_out):
            second = eager_env.get(o)
            if o not in sensitive and second is not None and not oracle.same_values(first, second):
                sensitive[o] = "eager gives different values on two runs (uninitialised memory?)"
        names = [f"{prefix}out{i}" for i in range(len(graph.outputs))]
        skip = {f"{prefix}out{i}": sensitive[o] for i, o in enumerate(graph.outputs) if o in sensitive}
        ref64 = None
        if ref_env is not None:
            ref64 = [ref_env[o] for o in graph.outputs]
        return eager_out, eager_env, ref_env, sensitive, oracle.Reference(names, eager_out, ref64, skip)

    # -- dynamic mode: a second call at other sizes ------------------------------------
    def second_call(self):
        """``(inputs, reference, info)`` for dynamic mode's second call, found once per model.

        ``info`` records the sizes (``from``, ``to``, ``shapes`` by input name) or, with
        ``inputs`` None, why there is no second call (``none``).
        """
        if self._second is None:
            try:
                self._second = self._find_resize()
            except Exception as exc:  # never let the search cost the first call's verdict
                self._second = None, None, {"none": f"resize search failed: {type(exc).__name__}: {exc}"[:300]}
        return self._second

    def _find_resize(self, max_real: int = 6):
        """Change every input dim of some size ``v`` (parameters keep theirs) to another size.

        Candidates (``v`` by how many input dims have it, then larger first; sizes 0 and 1 last
        or never; ``v+1``, ``v+2``, ``2v``, ``v-1``) are checked on fake (meta) tensors with the
        eager module; the first one whose eager run on real values works is taken.
        """
        import collections

        inputs = self.model.inputs
        counts = collections.Counter(d for t in inputs for d in t.shape)
        order = sorted((v for v in counts if v >= 2), key=lambda v: (-counts[v], -v)) + [1] * (1 in counts)
        meta_ok = self._shapes_ok([tuple(t.shape) for t in inputs])  # False: the fake check cannot judge
        tried, real = [], 0
        for v in order:
            for new in dict.fromkeys(n for n in (v + 1, v + 2, 2 * v, v - 1) if n >= 1 and n != v):
                shapes = [tuple(new if d == v else d for d in t.shape) for t in inputs]
                if meta_ok and not self._shapes_ok(shapes):
                    tried.append(f"{v}->{new}: eager rejects the shapes")
                    continue
                if real >= max_real:
                    return None, None, {"none": f"eager raised on {real} candidate sizes", "tried": tried[:12]}
                real += 1
                # fresh values at the new positions first; if those overflow, copies of the old ones
                for resized in (_resize_inputs(inputs, v, new, fresh=True), _resize_inputs(inputs, v, new, fresh=False)):
                    try:
                        reference = self._references(resized, prefix="call2:")[-1]
                    except Exception as exc:
                        tried.append(f"{v}->{new}: eager raised {type(exc).__name__}")
                        break
                    if _finite(reference.eager) or not _finite(self.eager_out):
                        info = {"from": v, "to": new, "key_prefix": SECOND_CALL_PREFIX,
                                "shapes": {n: list(t.shape) for n, t in zip(self.input_names, resized)}}
                        return resized, reference, info
                    tried.append(f"{v}->{new}: non-finite outputs")
        why = "no input dims to resize" if not order else "no other input sizes accepted by eager"
        return None, None, {"none": why, "tried": tried[:12]}

    def _shapes_ok(self, shapes) -> bool:
        """Whether the eager module runs on fake tensors of these input shapes."""
        import torch
        from torch._subclasses.fake_tensor import FakeTensorMode

        module = copy.deepcopy(self.module)
        log = logging.getLogger("torch._subclasses.fake_tensor")
        quiet, log.disabled = log.disabled, True  # it logs every failing meta kernel's traceback
        try:
            with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
                args = [torch.empty(s, dtype=t.dtype, device=t.device) for s, t in zip(shapes, self.model.inputs)]
                out = _as_list(module(*args))
            return len(out) == len(self.eager_out)
        except Exception:
            return False
        finally:
            log.disabled = quiet

    def inputs_file(self) -> bytes | None:
        """``inputs.safetensors`` plus the second call's inputs (``second_call.<name>``), or None."""
        from safetensors.torch import load, save

        inputs, _, _ = self.second_call()
        if inputs is None:
            return None
        tensors = load(self.model.files["inputs.safetensors"])
        for name, t in zip(self.input_names, inputs):
            tensors[SECOND_CALL_PREFIX + name] = t.detach().cpu().contiguous()
        return save(tensors)

    # -- backward ---------------------------------------------------------------
    def grads(self, fn, module, inputs, dtype64=False):
        base = [n for n, _ in _named_params(self.module)]
        return oracle.outputs_and_grads(fn, module, base, inputs, self.input_names, self.fwd_ref.skip, dtype64)

    def bwd_reference(self):
        if self._bwd_ref is None and self._bwd_error is None:
            if self.bwd_blockers:
                self._bwd_error = "skip", "gradients not judged: the model has values that may legitimately differ"
                return None
            try:
                m = copy.deepcopy(self.module)
                res = self.grads(m, m, _clone(self.model.inputs, self.device, requires_grad=True))
            except Exception as exc:
                self._bwd_error = "invalid", exc
                return None
            if res is None:
                self._bwd_error = "skip", "no differentiable output"
                return None
            values, names = res
            ref64 = None
            try:
                m64 = _to64(self.module)
                r64 = self.grads(m64, m64, _clone(self.model.inputs, self.device, dtype64=True, requires_grad=True), dtype64=True)
                if r64 is not None and r64[1] == names:
                    ref64 = r64[0]
            except Exception:
                ref64 = None
            skip = dict(self.fwd_ref.skip)
            n_out = len(values) - len(names)
            self._bwd_ref = oracle.Reference([f"out{i}" for i in range(n_out)] + names, values, ref64, skip)
        return self._bwd_ref

    # -- one test -----------------------------------------------------------------
    def run_test(self, backend_name: str, mode: str) -> dict:
        import torch

        from fuzz.campaign import backends

        backend = backends.get(backend_name)
        if mode not in backend.modes:
            return {"kind": "unsupported", "detail": f"{backend_name} does not support mode {mode}"}
        reference = self.fwd_ref
        if mode == "bwd":
            reference = self.bwd_reference()
            if reference is None:
                kind, why = self._bwd_error
                if kind == "invalid":
                    return {"kind": "invalid", "detail": "eager backward raised", "error": _error(why)}
                return {"kind": "skip", "detail": why}
        compile_model = backend.compile_function()
        module = copy.deepcopy(self.module)
        t0 = time.perf_counter()
        stage = "compile"
        try:
            if mode == "bwd":
                inputs = _clone(self.model.inputs, self.device, requires_grad=True)
                fn = compile_model(module, inputs, dynamic=False)
                stage = "run"
                res = self.grads(fn, fn if isinstance(fn, torch.nn.Module) else module, inputs)
                actual = res[0] if res is not None else []
            else:
                inputs = _clone(self.model.inputs, self.device)
                with torch.no_grad():
                    fn = compile_model(module, inputs, dynamic=(mode == "dynamic"))
                    stage = "run"
                    actual = _as_list(fn(*inputs))
        except Exception as exc:
            err = _error(exc)
            kind = oracle.classify_exception(err["type"], err["message"])
            if kind == "crash" and backend_name in ("export", "aoti") and _unsupported(err):
                kind = "unsupported"
            return {"kind": kind, "detail": f"{backend_name} raised during {stage}", "error": err,
                    "elapsed_s": time.perf_counter() - t0}
        elapsed = time.perf_counter() - t0
        j = oracle.judge(reference, actual)
        out = {"kind": j.kind, "detail": j.detail, "diff": j.diff, "elapsed_s": elapsed,
               "skipped_values": j.skipped or None}
        if j.kind == "mismatch":
            out["check"] = [j.diff["where"]] if j.diff and "where" in j.diff else j.checked
        if mode == "dynamic":
            if j.kind != "pass":
                out["second_call"] = {"none": "not run: the first call already failed"}
            else:
                self._run_second_call(backend_name, fn, out)
        return out

    def _run_second_call(self, backend_name: str, fn, out: dict) -> None:
        """Dynamic mode: call the same compiled ``fn`` (no recompile asked for; dynamo may
        recompile on its own) at the other sizes and judge it like the first call; updates ``out``."""
        import torch

        inputs, reference, info = self.second_call()
        out["second_call"] = info
        if inputs is None:
            return
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                actual = _as_list(fn(*_clone(inputs, self.device)))
        except Exception as exc:
            err = _error(exc)
            text = (err["type"] + " " + err["message"]).lower()
            if backend_name in ("export", "aoti") and any(m in text for m in INPUT_GUARD_MARKERS):
                # the exported program specialised on a size the second call changes: refused by design
                out["second_call"] = dict(info, declined=f"{err['type']}: {err['message'][:300]}")
                return
            out.update({"kind": oracle.classify_exception(err["type"], err["message"]), "diff": None,
                        "detail": f"{backend_name} raised during the second call (other sizes)", "error": err})
            out["elapsed_s"] += time.perf_counter() - t0
            return
        out["elapsed_s"] += time.perf_counter() - t0
        j = oracle.judge(reference, actual)
        out["skipped_values"] = {**(out.get("skipped_values") or {}), **j.skipped} or None
        if j.kind == "mismatch":
            out.update({"kind": j.kind, "detail": j.detail, "diff": j.diff,
                        "check": [j.diff["where"]] if j.diff and "where" in j.diff else j.checked})


def _finite(values) -> bool:
    import torch

    return all(bool(torch.isfinite(v).all()) for v in values if isinstance(v, torch.Tensor) and oracle.is_float(v))


def _resize_inputs(inputs, old: int, new: int, fresh: bool = True, seed: int = 0):
    """``inputs`` with every dim of size ``old`` made ``new``.

    Old positions keep their values (cropped, or tiled along the dim when it grows). With
    ``fresh``, float values at new positions are drawn uniformly between the tensor's finite
    min and max instead of repeating old ones (repeats make ties for argmax, max_pool...).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = []
    for t in inputs:
        dims = [d for d, size in enumerate(t.shape) if size == old]
        r = t
        for d in dims:
            r = r.index_select(d, torch.arange(new, device=t.device) % old)
        if fresh and dims and new > old and t.dtype.is_floating_point and t.numel():
            finite = t[torch.isfinite(t)].to(torch.float64)
            if finite.numel():
                lo, hi = float(finite.min()), float(finite.max())
                mask = torch.zeros(r.shape, dtype=torch.bool)
                for d in dims:
                    grown = (torch.arange(new) >= old).reshape([-1 if i == d else 1 for i in range(r.dim())])
                    mask = mask | grown
                values = lo + (hi - lo) * torch.rand(r.shape, generator=gen, dtype=torch.float64)
                r = torch.where(mask.to(r.device), values.to(r.dtype).to(r.device), r)
        out.append(r.contiguous() if r is not t else t.clone())
    return out


def _param_names(fn) -> list[str]:
    import inspect

    return [p for p in inspect.signature(fn).parameters if p != "self"]


def _named_params(module):
    for name, p in module.named_parameters():
        yield name.replace("_orig_mod.", ""), p


def _unsupported(err: dict) -> bool:
    text = (err["type"] + " " + err["message"]).lower()
    return "unsupported" in err["type"].lower() or "usererror" in err["type"].lower() or any(
        m in text for m in UNSUPPORTED_MARKERS)


# ---------------------------------------------------------------------------
# the job loop


def run_job(job: dict, emit) -> None:
    """Run one job, reporting through ``emit(event_dict)``."""
    jid = job["job"]
    emit({"event": "begin", "job": jid, "test": None, "phase": "prepare", "log_offset": _log_offset()})
    device = job.get("device", "cpu")
    stage = "generate"
    try:
        model = load_model(job)
        stage = "eager"
        session = Session(model, device)
    except Exception as exc:
        err = _error(exc)
        emit({"event": "model", "job": jid, "model": job.get("model"), "ok": False, "error": err})
        # genfail: no model to test (not counted as tests); invalid: eager itself fails on it
        kind = "genfail" if stage == "generate" else "invalid"
        detail = (f"generator failed: {err['type']}: {err['message'][:200]}" if stage == "generate"
                  else f"eager raised {err['type']}: {err['message'][:200]}")
        for t in job["tests"]:
            emit({"event": "verdict", "job": jid, "test": t["test"], "backend": t["backend"], "mode": t["mode"],
                  "kind": kind, "detail": detail, "error": err})
        emit({"event": "done", "job": jid})
        return
    event = {"event": "model", "job": jid, "model": job.get("model"), "ok": True, "ops": model.graph.ops(),
             "nodes": len(model.graph.nodes),
             "files": {k: base64.b64encode(v).decode() for k, v in model.files.items()},
             "sensitive": session.sensitive}
    if any(t["mode"] == "dynamic" for t in job["tests"]):
        # Found here, in the prepare phase: eager dying at the new sizes is not a backend's fault.
        event["second_call"] = session.second_call()[2]
        try:
            data = session.inputs_file()
        except Exception as exc:
            data = None
            event["second_call"] = {"none": f"cannot save the second call's inputs: {exc}"[:300]}
        if data is not None:
            event["files_dynamic"] = {"inputs.safetensors": base64.b64encode(data).decode()}
    emit(event)
    for t in job["tests"]:
        emit({"event": "begin", "job": jid, "test": t["test"], "phase": "test", "log_offset": _log_offset()})
        try:
            verdict = session.run_test(t["backend"], t["mode"])
        except Exception as exc:  # the oracle itself failed: report, do not die
            verdict = {"kind": "skip", "detail": "oracle error", "error": _error(exc)}
        verdict.update({"event": "verdict", "job": jid, "test": t["test"], "backend": t["backend"], "mode": t["mode"]})
        emit(json.loads(json.dumps(verdict, default=_json_default)))
    emit({"event": "done", "job": jid})


def _log_offset() -> int | None:
    """Size of the worker's log (stderr) now: the executor reads a dead worker's log from here."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        return os.fstat(2).st_size
    except (OSError, ValueError):
        return None


def _json_default(o):
    if isinstance(o, float):
        return repr(o)
    return str(o)


def warm_up(backend_names, device="cpu") -> dict:
    """Compile a tiny model once per backend so the first real test does not pay start-up."""
    import torch

    from fuzz.campaign import backends

    times = {}
    for name in backend_names:
        b = backends.get(name)
        if b.test_only:
            continue
        t0 = time.perf_counter()
        try:
            m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval().to(device)
            x = torch.randn(2, 4, device=device)
            with torch.no_grad():
                b.compile_function()(m, [x])(x)
        except Exception:
            pass
        times[name] = round(time.perf_counter() - t0, 2)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fuzz.campaign.worker")
    ap.add_argument("--result-fd", type=int, required=True)
    ap.add_argument("--mem-limit-mb", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backends", default="")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    limit_address_space(args.mem_limit_mb)  # before torch maps anything
    out = os.fdopen(args.result_fd, "w", buffering=1)

    def emit(event):
        out.write(json.dumps(event) + "\n")
        out.flush()

    import torch

    torch.set_num_threads(max(1, args.threads))
    try:
        import torch._inductor.config as inductor_config

        inductor_config.compile_threads = 1  # no compile subprocess pool per worker
    except Exception:
        pass
    import faulthandler

    faulthandler.enable()  # a segfault leaves a Python stack in the worker log
    warm = warm_up([b for b in args.backends.split(",") if b], args.device)
    emit({"event": "ready", "pid": os.getpid(), "warmup_s": warm, "torch": torch.__version__})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        job = json.loads(line)
        if job.get("stop"):
            break
        run_job(job, emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
