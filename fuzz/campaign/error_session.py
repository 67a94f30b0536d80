"""Tests of a program eager rejects (``fuzz.gen.error_calls``): every backend must reject it too.

``ErrorSession(model)`` runs the program eagerly on its fenced inputs and keeps eager's error (a
program eager no longer rejects is ``invalid``: nothing to hold a backend to). ``run_test``
compiles a fresh copy with the backend and calls it as a test of that mode calls a model
(``dynamic``: compiled with ``dynamic=True``; ``bwd``: float inputs require grad; ``train``: the
module in training mode, grad enabled; ``fwd``/``dynamic`` under the ``inference_mode`` knob: the
compiled side under torch.inference_mode(), as a session's, and eager's refusal checked again
there, since a call eager rejects under no_grad may be one it takes under inference mode). Any exception, at compile or at the call, is a pass: the
backend rejected the program, whatever its words. Values returned where eager raised are a
``mismatch`` whose detail is ``raises``: the compiled program accepted a call eager refuses and
returned something, which a user would take for a result.

It has the parts of ``fuzz.campaign.session.Session`` the worker reads (``model``, ``sensitive``,
``second_call``, ``inputs_file``, ``run_test``); dynamic mode's second call does not apply.
"""

from __future__ import annotations

import copy
import time

from fuzz.campaign.copies import as_list, clone_inputs, eager_error_in_inference_mode
from fuzz.campaign.fence import fence_for
from fuzz.campaign import knobs
from fuzz.campaign.verdict import Kind, Verdict, describe_error

DETAIL = "raises"


def is_error_program(graph) -> bool:
    """Whether ``graph`` is a program eager rejects, made to be rejected (``graph.meta["eager_raises"]``)."""
    return isinstance(graph.meta.get("eager_raises"), dict)


class ErrorSession:
    def __init__(self, model, device: str = "cpu"):
        import torch

        self.model = model
        self.device = device
        self.module = model.module.to(device)
        self.fence = fence_for(model.graph)
        self.sensitive: dict = {}
        try:
            with torch.no_grad():
                copy.deepcopy(self.module)(*clone_inputs(model.inputs, device, fence=self.fence))
        except Exception as exc:  # noqa: BLE001 - expected: the program is one eager rejects
            self.eager_error = describe_error(exc)
        else:
            raise ValueError("eager no longer raises on this error program (it did when it was made)")

    def second_call(self):
        return None, None, {"none": "a program eager rejects: no second call"}

    def inputs_file(self):
        return None

    def run_test(self, backend_name: str, mode: str) -> Verdict:
        import torch

        from fuzz.campaign import backends

        backend = backends.get(backend_name)
        if mode not in backend.modes:
            return Verdict(Kind.UNSUPPORTED, f"{backend_name} does not support mode {mode}")
        compile_model = backend.compile_function()
        module = copy.deepcopy(self.module)
        grad = mode in ("bwd", "train")
        if mode == "train":
            module.train()
        t0 = time.perf_counter()
        try:
            with torch.enable_grad() if grad else knobs.forward_context():  # inputs made inside
                inputs = clone_inputs(self.model.inputs, self.device, requires_grad=grad, fence=self.fence)
                fn = compile_model(module, inputs, dynamic=knobs.dynamic_argument(mode))
                out = as_list(fn(*inputs))
        except Exception as exc:  # noqa: BLE001 - rejected, as eager rejects it
            return Verdict(Kind.PASS, f"{backend_name} raised as eager does ({type(exc).__name__})",
                           elapsed_s=time.perf_counter() - t0)
        if not grad and knobs.INFERENCE_MODE and eager_error_in_inference_mode(
                self.module, self.model.inputs, self.device, self.fence) is None:
            return Verdict(Kind.SKIP, "eager accepts the call under torch.inference_mode() too",
                           elapsed_s=time.perf_counter() - t0)
        eager = f"{self.eager_error['type']}: {self.eager_error['message'].strip().splitlines()[0][:300]}"
        got = ", ".join(f"{str(o.dtype).replace('torch.', '')}{list(o.shape)}" if isinstance(o, torch.Tensor)
                        else type(o).__name__ for o in out)
        return Verdict(Kind.MISMATCH, DETAIL, elapsed_s=time.perf_counter() - t0,
                       diff={"where": "call", "expected": f"eager raises {eager}", "got": f"{backend_name} returned {got}"})
