"""One model under test: its references, and every backend and mode judged against them.

``Session(model)`` runs the model once eagerly (every intermediate), once in float64 and
twice perturbed in float64 for the oracle (``fuzz.campaign.oracle``), so all of the model's
tests share them; ``run_test(backend, mode)`` compiles a fresh copy of the module with the
backend and returns a ``Verdict``. ``bwd`` adds a backward pass (its reference made once);
``dynamic`` adds a second call at other input sizes (``fuzz.campaign.second_call``, found once per model);
``train`` runs one training step (``fuzz.campaign.train``; its reference made once).
The worker loop around it is ``fuzz.campaign.worker``.
"""

from __future__ import annotations

import copy
import dataclasses
import time

from fuzz.campaign import accumulation, conditioning, knobs, lowprec, oracle, rounding, second_call, sensitivity, train, written
from fuzz.campaign.copies import as_list, clone_inputs, eager_error_in_inference_mode, perturbed_module, to64
from fuzz.campaign.fence import fence_for
from fuzz.gen.program import tensor_identifiers
from fuzz.ir.record import dtype_from_name
from fuzz.campaign.verdict import Kind, Verdict, describe_error

UNSUPPORTED_MARKERS = ("data-dependent", "data dependent", "unsupported", "not supported", "guardondatadependent",
                       "dynamic shape operator", "constraint violation",
                       # fake tensors' own exceptions for an op whose output (aten.equal inside corrcoef) or
                       # output shape (_ctc_loss) depends on values: export's documented limit, not a bug
                       "datadependentoutputexception", "dynamicoutputshapeexception")
# An exported program (export, aoti) checks its inputs against the shapes it was exported for (AOTInductor
# only with AOTI_RUNTIME_CHECK_INPUTS=1, which its backend sets); a second call at sizes it specialised on
# is refused by design, not a bug.
INPUT_GUARD_MARKERS = ("expected input at", "runtime assertion failed", "unmatched dim value", "dim value is too",
                       "guard failed", "unmatched stride value")


class Model:
    """A model ready for testing: graph, module, inputs and the files a case needs."""

    def __init__(self, graph, module, inputs, files: dict[str, bytes]):
        self.graph = graph
        self.module = module
        self.inputs = inputs
        self.files = files


class Session:
    """References for one model, shared by all its tests."""

    def __init__(self, model: Model, device: str = "cpu"):
        from fuzz.gen import program

        self.model = model
        self.device = device
        self.module = model.module.to(device)
        graph = model.graph
        self.fence = fence_for(graph)  # elements around every input of every run (fuzz.campaign.fence)
        # Every intermediate value, for the oracle's "which values may differ" analysis.
        full = graph.copy()
        full.outputs = list(dict.fromkeys([o for n in graph.nodes for o in n.outputs] + graph.outputs))
        self.full_names = full.outputs
        state = self.module.state_dict()
        self.full_module = program.build_module(full, {k: v.detach().cpu() for k, v in state.items()}).to(device)

        # Inputs by name: graph.json's tensor order need not be the order Model.forward takes them in.
        self.input_names = _param_names(self.module.forward)
        # the graph's names of the inputs, in forward's order (graph.json lists tensors sorted by name)
        by_identifier = {v: k for k, v in tensor_identifiers(graph).items()}
        self.graph_input_order = [by_identifier.get(n, n) for n in self.input_names]
        # The buffers and inputs forward writes (fuzz.gen.state_forms), judged after every call.
        self.writes = written.writes(graph, self.input_names)
        self.frozen = written.written_inputs(self.writes, self.input_names)
        self.eager_out, eager_env, self.ref_env, self.sensitive, self.fwd_ref = self._references(model.inputs)
        # Gradients are judged unless a float value may differ or a tie decides where a gradient flows.
        self.bwd_blockers = {n: why for n, why in self.sensitive.items()
                             if n in eager_env and (oracle.is_float(eager_env[n]) or sensitivity.routes_gradient(graph, n))}
        self.bwd_blockers.update(sensitivity.gradient_blockers(graph, self.ref_env or {}, eager_env))
        self.bwd_blockers.update(accumulation.accumulation_blockers(graph, eager_env))
        self.nonfinite_path = oracle.nonfinite_downstream(graph, eager_env)
        self.nonfinite_matrix = conditioning.nonfinite_matrix_call(graph, eager_env)
        self.undefined_indexing = sensitivity.undefined_indexing(graph, eager_env)
        self._bwd_ref = None
        self._bwd_error = None
        self._second = None
        self._train = None

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
            # Every run on its own copies of the module and inputs: forward may write into both.
            eager_module, eager_inputs = copy.deepcopy(self.module), clone_inputs(inputs, device, fence=self.fence)
            eager_out = as_list(eager_module(*eager_inputs))
            eager_state = written.read(self.writes, eager_module, eager_module, eager_inputs, self.input_names)
            eager_env = dict(zip(self.full_names, as_list(copy.deepcopy(self.full_module)(*clone_inputs(full_inputs, device, fence=self.fence)))))
        ref_env = None
        perturbed = []
        try:
            with torch.no_grad():
                m64 = to64(self.full_module)
                ref_env = dict(zip(self.full_names, as_list(m64(*clone_inputs(full_inputs, device, dtype64=True, fence=self.fence)))))
        except Exception:  # float64 not supported by some op: judge against eager, looser
            ref_env = None
        if ref_env is not None:
            # The rounding-boundary probes: a probe that fails (a perturbed value leaves an op's
            # domain) is one probe less, not a reason to drop the float64 reference.
            for seed in (1, 2):
                try:
                    with torch.no_grad():
                        pm, gen = perturbed_module(self.full_module, seed)
                        outs = as_list(pm(*clone_inputs(full_inputs, device, dtype64=True, noise=True, gen=gen, fence=self.fence)))
                    perturbed.append(dict(zip(self.full_names, outs)))
                except Exception:  # noqa: BLE001
                    continue
        # Graph inputs and parameters too: the oracle re-runs single nodes on inputs, and a
        # pivoting op's matrix may be a parameter.
        params = self._param_values()
        # A number forward takes as a Python scalar is, as the graph has it, a 0-dim tensor.
        eager_env = {**{n: v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=dtype_from_name(graph.tensors[n].dtype))
                        for n, v in by_name.items() if n in graph.tensors}, **params, **eager_env}
        if ref_env is not None:
            ref_env = {**{n: v.double() if v.is_floating_point() else v for n, v in params.items()}, **ref_env}
        try:
            sensitive = sensitivity.sensitive_tensors(graph, eager_env, ref_env, perturbed)
        except Exception as exc:  # the oracle's own analysis failed: not eager's fault, not a pass
            raise oracle.OracleError(f"sensitivity analysis: {type(exc).__name__}: {exc}") from exc
        # Two eager runs already happened (module, full module): an output they disagree on is
        # nondeterministic in eager itself (e.g. uninitialised memory), so no backend can match it.
        for o, first in zip(graph.outputs, eager_out):
            second = eager_env.get(o)
            if o not in sensitive and second is not None and not sensitivity.same_values(first, second):
                sensitive[o] = "eager gives different values on two runs (uninitialised memory?)"
        # The written state after the call is judged as the graph value that holds it.
        values = list(graph.outputs) + [w.value for w in self.writes]
        names = [f"{prefix}out{i}" for i in range(len(graph.outputs))] + written.labels(self.writes, prefix)
        skip = {name: sensitive[o] for name, o in zip(names, values) if o in sensitive}
        ref64 = None
        if ref_env is not None:
            ref64 = [ref_env[o] for o in values]
        upstream, _ = oracle.path_precision(graph)
        precision = {name: upstream.get(o) for name, o in zip(names, values) if upstream.get(o)}
        reference = oracle.Reference(names, eager_out + eager_state, ref64, skip, precision)
        # made when a compiled run first has an element flagged without it (most never do)
        reference.low32_fn = lowprec.deferred_float32_outputs(graph, self.module.state_dict(), inputs, len(eager_state),
                                                              self.graph_input_order)
        reference.low32_bare_fn = lowprec.deferred_float32_outputs(graph, self.module.state_dict(), inputs,
                                                                   len(eager_state), self.graph_input_order, keep_casts=False)
        reference.noisy_fn = rounding.deferred_noisy_outputs(graph, self.module.state_dict(), inputs, len(eager_state), ref64,
                                                             self.graph_input_order)
        return eager_out, eager_env, ref_env, sensitive, reference

    def _gradient_sources(self, names: list[str]) -> dict:
        """``grad:<name>`` (or ``param:<name>``) -> the graph tensors its gradient flows back
        from: the input or parameter itself, or a submodule's outputs for its own parameters."""
        from fuzz.gen.program import module_attr, tensor_identifiers

        graph = self.model.graph
        by_ident = {ident: name for name, ident in tensor_identifiers(graph).items()}
        modules = {module_attr(n): n for n in graph.nodes if n.api == "module"}
        out = {}
        for g in names:
            leaf = g.partition(":")[2]
            if leaf in by_ident:
                out[g] = [by_ident[leaf]]
            elif leaf.split(".")[0] in modules:
                out[g] = list(modules[leaf.split(".")[0]].outputs)
        return out

    def _gradient_precision(self, grad_names: list[str]) -> dict:
        """``grad:<name>`` -> the least precise dtype the gradient flows back through."""
        _, downstream = oracle.path_precision(self.model.graph)
        out = {}
        for g, sources in self._gradient_sources(grad_names).items():
            low = oracle.least_precise(*(downstream.get(t) for t in sources))
            if low:
                out[g] = low
        return out

    def _gradients_at_nonfinite(self, names: list[str]) -> dict:
        """``grad:``/``param:`` names -> why they are not judged: the gradient flows back through
        a NaN or infinite forward value, where a derivative has no defined value (eager's kernels
        mask some such gradients to 0, a decomposition's formula gives NaN: neither is wrong)."""
        out = {}
        for g, sources in self._gradient_sources([n for n in names if n.startswith(("grad:", "param:"))]).items():
            hit = next((t for t in sources if t in self.nonfinite_path), None)
            if hit is not None:
                out[g] = f"its gradient flows back through a NaN or infinite value ({self.nonfinite_path[hit]})"
        return out

    def _param_values(self) -> dict:
        """The model's parameters and buffers by graph tensor name."""
        from fuzz.gen.program import tensor_identifiers

        graph = self.model.graph
        state = self.module.state_dict()
        idents = tensor_identifiers(graph)
        return {p: state[idents[p]].detach() for p in graph.params if idents.get(p) in state}

    # -- dynamic mode: a second call at other sizes ------------------------------------
    def second_call(self):
        """``(inputs, reference, info)`` for dynamic mode's second call, found once per model.

        ``info`` records the sizes (``from``, ``to``, ``shapes`` by input name) or, with
        ``inputs`` None, why there is no second call (``none``).
        """
        if self._second is None:
            try:
                self._second = second_call.find(self)
            except Exception as exc:  # never let the search cost the first call's verdict
                self._second = None, None, {"none": f"resize search failed: {type(exc).__name__}: {exc}"[:300]}
        return self._second

    def inputs_file(self) -> bytes | None:
        """``inputs.safetensors`` plus the second call's inputs (``second_call.<name>``), or None."""
        return second_call.inputs_file(self)

    # -- backward ---------------------------------------------------------------
    def grads(self, fn, module, inputs, dtype64=False):
        base = [n for n, _ in _named_params(self.module)]
        return oracle.outputs_and_grads(fn, module, base, inputs, self.input_names, self.fwd_ref.skip, dtype64)

    def bwd_reference(self):
        if self._bwd_ref is None and self._bwd_error is None:
            if self.bwd_blockers:
                self._bwd_error = Kind.SKIP, "gradients not judged: the model has values that may legitimately differ"
                return None
            try:
                m = copy.deepcopy(self.module)
                inputs = clone_inputs(self.model.inputs, self.device, requires_grad=True, frozen=self.frozen, fence=self.fence)
                res = self.grads(m, m, inputs)
            except Exception as exc:
                self._bwd_error = Kind.INVALID, exc
                return None
            if res is None:
                self._bwd_error = Kind.SKIP, "no differentiable output"
                return None
            values, names = res
            state = written.read(self.writes, m, m, inputs, self.input_names)
            ref64 = None
            try:
                m64 = to64(self.module)
                inputs64 = clone_inputs(self.model.inputs, self.device, dtype64=True, requires_grad=True, frozen=self.frozen, fence=self.fence)
                r64 = self.grads(m64, m64, inputs64, dtype64=True)
                if r64 is not None and r64[1] == names:
                    ref64 = r64[0] + written.read(self.writes, m64, m64, inputs64, self.input_names)
            except Exception:
                ref64 = None
            skip = {**self.fwd_ref.skip, **self._gradients_at_nonfinite(names)}
            n_out = len(values) - len(names)
            precision = {**self.fwd_ref.precision, **self._gradient_precision(names)}
            self._bwd_ref = oracle.Reference([f"out{i}" for i in range(n_out)] + names + written.labels(self.writes),
                                             values + state, ref64, skip, precision)
            self._add_float32_runs(self._bwd_ref, lambda: clone_inputs(self.model.inputs, self.device,
                                                                    requires_grad=True, frozen=self.frozen),
                                   lambda mod, ins: self.grads(mod, mod, ins), names, len(state))
            if ref64 is not None:
                self._bwd_ref.skip.update(train.ill_conditioned(self._bwd_ref, self._perturbed_grads(names),
                                                                "in the backward pass"))
        return self._bwd_ref

    def _perturbed_grads(self, names: list[str]) -> list:
        """Two float64 ``grads`` runs with the float leaves perturbed by a few ulps (``copies.perturbed_module``,
        ``sensitivity.PERTURB``), in ``bwd_reference``'s value order: a gradient they move beyond
        tolerance is ill-conditioned (e.g. householder_product's: 1e-15 in the matrix moves it 85x),
        and a compiled run may land anywhere there."""
        out = []
        for seed in (1, 2):
            try:
                pm, gen = perturbed_module(self.module, seed)
                inputs = clone_inputs(self.model.inputs, self.device, dtype64=True, requires_grad=True, noise=True, gen=gen,
                                frozen=self.frozen, fence=self.fence)
                r = self.grads(pm, pm, inputs, dtype64=True)
            except Exception:  # noqa: BLE001 - a probe that fails is one probe less
                continue
            if r is not None and r[1] == names:
                out.append(r[0] + written.read(self.writes, pm, pm, inputs, self.input_names))
        return out

    # -- train mode: one training step ---------------------------------------------
    def train_step(self, module, dtype64=False, noise=None, gen=None, seed=0):
        """``train.train_step`` of a copy of ``module`` in training mode, eagerly (seeded RNG)."""
        import torch

        torch.manual_seed(seed)
        m = copy.deepcopy(module).train()
        inputs = clone_inputs(self.model.inputs, self.device, dtype64=dtype64, noise=noise, gen=gen, fence=self.fence)
        return train.train_step(m, m, inputs, self.fwd_ref.skip)

    def train_reference(self):
        """``(Reference, None)`` for train mode, or ``(None, (kind, why))`` when it cannot be judged."""
        if self._train is None:
            self._train = self._make_train_reference()
        return self._train

    def _make_train_reference(self):
        if not any(p.dtype.is_floating_point for p in self.module.parameters()):
            return None, (Kind.UNSUPPORTED, "no trainable float parameters: nothing to train")
        if self.bwd_blockers:
            return None, (Kind.SKIP, "training step not judged: the model has values that may legitimately differ")
        try:
            res = self.train_step(self.module)
            again = self.train_step(self.module, seed=1)
        except Exception as exc:
            return None, (Kind.INVALID, exc)
        if res is None:
            return None, (Kind.SKIP, "no differentiable output")
        values, names = res
        if again is None or not all(sensitivity.same_values(a, b) for a, b in zip(values, again[0])):
            return None, (Kind.SKIP, "random in training mode (e.g. dropout): two eager steps with other seeds differ")
        gradient = self._gradient_precision([n for n in names if n.startswith("grad:")])
        precision = train.value_precision(self.model.graph, names, self.fwd_ref.precision, gradient)
        reference = oracle.Reference(names, values, None, {**self.fwd_ref.skip, **self._gradients_at_nonfinite(names)},
                                     precision)
        try:
            r64 = self.train_step(to64(self.module), dtype64=True)
            reference.ref64 = r64[0] if r64 is not None and r64[1] == names else None
        except Exception:
            reference.ref64 = None
        if reference.ref64 is not None:
            perturbed = []
            for seed in (1, 2):
                try:
                    pm, gen = perturbed_module(self.module, seed)
                    r = self.train_step(pm, dtype64=True, noise=True, gen=gen)
                except Exception:  # noqa: BLE001  a probe that fails is one probe less
                    continue
                if r is not None and r[1] == names:
                    perturbed.append(r[0])
            reference.skip.update(train.ill_conditioned(reference, perturbed))
        def step(module, inputs):  # the float32-intermediate training steps, as bwd has them
            import torch

            torch.manual_seed(0)
            return train.train_step(module.train(), module, inputs, self.fwd_ref.skip)
        self._add_float32_runs(reference, lambda: clone_inputs(self.model.inputs, self.device), step, names, 0)
        return reference, None

    def _add_float32_runs(self, reference, make_inputs, run, names, n_state) -> None:
        """Give a gradient reference its deferred float32-intermediate runs (``lowprec``): with the
        graph's low-precision casts kept, and made float32 too. ``run(module, inputs)`` returns what
        the reference holds; nothing is copied for a graph without a low-precision tensor."""
        if not lowprec.holds_low_precision(self.model.graph):
            return
        for keep, attr in ((True, "low32_fn"), (False, "low32_bare_fn")):
            setattr(reference, attr, lowprec.deferred_float32_grads(
                self.model.graph, self.module.state_dict(), make_inputs(), run, names, n_state,
                self.graph_input_order, keep))

    # -- one test -----------------------------------------------------------------
    def run_test(self, backend_name: str, mode: str) -> Verdict:
        """One test; under the settings the model needs (``fuzz.campaign.knobs.model_knobs``: dynamo's
        capture flags for data-dependent calls), restored afterwards."""
        with knobs.applied(knobs.model_knobs(self.model.graph.meta)):
            return self._run_test(backend_name, mode)

    def _run_test(self, backend_name: str, mode: str) -> Verdict:
        import torch

        from fuzz.campaign import backends

        backend = backends.get(backend_name)
        if mode not in backend.modes:
            return Verdict(Kind.UNSUPPORTED, f"{backend_name} does not support mode {mode}")
        if self.undefined_indexing:
            return Verdict(Kind.SKIP, f"not compiled: {self.undefined_indexing} is given an index out of range and "
                           "does not check it (undefined behaviour: any result, a crash or a signal says nothing)")
        frozen = knobs.freezing_forbids([w.key for w in self.writes if w.kind == "buffer"], backend_name, mode)
        if frozen:
            return Verdict(Kind.SKIP, frozen)
        reference = self.fwd_ref
        if mode == "bwd":
            reference = self.bwd_reference()
            if reference is None:
                kind, why = self._bwd_error
                if kind == Kind.INVALID:
                    return Verdict(Kind.INVALID, "eager backward raised", error=describe_error(why))
                return Verdict(Kind.SKIP, why)
        elif mode == "train":
            reference, why = self.train_reference()
            if reference is None:
                if why[0] == Kind.INVALID:
                    return Verdict(Kind.INVALID, "eager training step raised", error=describe_error(why[1]))
                return Verdict(*why)
        compile_model = backend.compile_function()
        module = copy.deepcopy(self.module)
        t0 = time.perf_counter()
        stage = "compile"
        try:
            if mode == "bwd":
                inputs = clone_inputs(self.model.inputs, self.device, requires_grad=True, frozen=self.frozen, fence=self.fence)
                fn = compile_model(module, inputs, dynamic=False)
                stage = "run"
                with knobs.compiled_backward(backend_name):
                    res = self.grads(fn, fn if isinstance(fn, torch.nn.Module) else module, inputs)
                actual = res[0] + self._state(backend, fn, module, inputs) if res is not None else []
            elif mode == "train":
                torch.manual_seed(0)
                module.train()
                inputs = clone_inputs(self.model.inputs, self.device, fence=self.fence)
                fn = compile_model(module, inputs, dynamic=False)
                stage = "run"
                with knobs.compiled_backward(backend_name):
                    res = train.train_step(fn, module, inputs, self.fwd_ref.skip)
                actual = res[0] if res is not None else []
            else:
                with knobs.forward_context():  # inputs made inside: inference tensors under the knob
                    inputs = clone_inputs(self.model.inputs, self.device, fence=self.fence)
                    fn = compile_model(module, inputs, dynamic=knobs.dynamic_argument(mode))
                    stage = "run"
                    actual = as_list(fn(*inputs)) + self._state(backend, fn, module, inputs)
        except Exception as exc:
            err = describe_error(exc)
            kind = oracle.classify_exception(err["type"], err["message"])
            if kind == Kind.CRASH and backend.exported and _unsupported(err):
                kind = Kind.UNSUPPORTED
            if kind == Kind.CRASH and mode in ("fwd", "dynamic") and knobs.INFERENCE_MODE:
                eager_err = eager_error_in_inference_mode(self.module, self.model.inputs, self.device, self.fence)
                if eager_err:
                    return Verdict(Kind.SKIP, f"eager raises under torch.inference_mode() too ({eager_err})", error=err,
                                   elapsed_s=time.perf_counter() - t0)
            if kind == Kind.CRASH and err["type"].endswith("LinAlgError") and self.nonfinite_matrix:
                return Verdict(Kind.SKIP, f"{backend_name} raised LinAlgError on {self.nonfinite_matrix}'s non-finite "
                               "matrix (one LAPACK driver raises, another gives NaN)", error=err,
                               elapsed_s=time.perf_counter() - t0)
            return Verdict(kind, f"{backend_name} raised during {stage}", error=err,
                           elapsed_s=time.perf_counter() - t0)
        elapsed = time.perf_counter() - t0
        j = oracle.judge(self._readable(reference, actual), actual, strides=backend.eager_strides and mode in ("fwd", "dynamic"))
        out = Verdict(j.kind, j.detail, diff=j.diff, elapsed_s=elapsed, skipped_values=j.skipped or None)
        if out.kind == Kind.MISMATCH:
            out.check = [j.diff["where"]] if j.diff and "where" in j.diff else j.checked
        if mode == "dynamic":
            if out.kind != Kind.PASS:
                out.second_call = {"none": "not run: the first call already failed"}
            else:
                self._run_second_call(backend, fn, module, out)
        return out

    def judge_fwd(self, backend, outputs, module, inputs) -> oracle.Judgement:
        """A compiled forward's ``outputs``, and the state it wrote into ``module`` (the copy it
        was compiled from) and ``inputs``, judged against ``fwd_ref`` as a lone fwd test judges them
        (``fuzz.campaign.batch``: one model's part of a batched run)."""
        actual = as_list(outputs) + self._state(backend, module if backend.state_readable else None, module, inputs)
        return oracle.judge(self._readable(self.fwd_ref, actual), actual, strides=backend.eager_strides)

    def _state(self, backend, fn, module, inputs) -> list:
        """The written state after a compiled call (None where the backend keeps its own buffers)."""
        if not self.writes:
            return []
        return written.read(self.writes, fn, module if backend.state_readable else None, inputs, self.input_names)

    def _readable(self, reference, actual):
        """``reference`` less the written-state values a backend's run could not give (None)."""
        state = {prefix + label for prefix in ("", "call2:") for label in written.labels(self.writes)}
        names = [n for n, a in zip(reference.names, actual) if a is None and n in state]
        if not names:
            return reference
        return dataclasses.replace(reference, skip={**reference.skip, **{n: written.UNREADABLE for n in names}})

    def _run_second_call(self, backend, fn, module, out: Verdict) -> None:
        """Dynamic mode: call the same compiled ``fn`` (no recompile asked for; dynamo may
        recompile on its own) at the other sizes and judge it like the first call; updates ``out``."""
        backend_name = backend.name
        inputs, reference, info = self.second_call()
        out.second_call = info
        if inputs is None:
            return
        if not backend.state_readable and any(w.kind == "buffer" for w in self.writes):
            # the compiled model keeps the buffers its first call wrote and they cannot be put back,
            # so the reference (from the saved state) does not apply to its second call
            out.second_call = dict(info, declined=f"{backend_name} keeps the buffers the first call wrote; "
                                                  "they cannot be restored for the second call")
            return
        if backend.specialises_numbers and info.get("numbers"):
            # export's module refuses such a call ("expected input at ... to be equal to"); AOTInductor's
            # runner does not check and silently keeps the first value (the fourteenth session's aoti
            # campaign: 11 of its 12 "mismatches" were that). Neither is a finding.
            out.second_call = dict(info, declined=f"{backend_name} specialises the Python numbers forward takes; "
                                                  "the second call changes " + ", ".join(info["numbers"]))
            return
        written.restore(self.writes, fn, module, self.module)  # the reference starts from the saved state too
        t0 = time.perf_counter()
        try:
            with knobs.forward_context():
                second = clone_inputs(inputs, self.device, fence=self.fence)
                actual = as_list(fn(*second)) + self._state(backend, fn, module, second)
        except Exception as exc:
            err = describe_error(exc)
            text = (err["type"] + " " + err["message"]).lower()
            if backend.exported and any(m in text for m in INPUT_GUARD_MARKERS):
                # the exported program specialised on a size the second call changes: refused by design
                out.second_call = dict(info, declined=f"{err['type']}: {err['message'][:300]}")
                return
            kind = oracle.classify_exception(err["type"], err["message"])
            eager_err = (eager_error_in_inference_mode(self.module, inputs, self.device, self.fence)
                         if kind == Kind.CRASH and knobs.INFERENCE_MODE else None)
            if eager_err:
                out.second_call = dict(info, declined=f"eager raises under torch.inference_mode() too ({eager_err})")
                return
            out.kind = kind
            out.diff = None
            out.detail = f"{backend_name} raised during the second call (other sizes)"
            out.error = err
            out.elapsed_s += time.perf_counter() - t0
            return
        out.elapsed_s += time.perf_counter() - t0
        j = oracle.judge(self._readable(reference, actual), actual, strides=backend.eager_strides)
        out.skipped_values = {**(out.skipped_values or {}), **j.skipped} or None
        if j.kind == Kind.MISMATCH:
            out.kind, out.detail, out.diff = j.kind, j.detail, j.diff
            out.check = [j.diff["where"]] if j.diff and "where" in j.diff else j.checked


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
