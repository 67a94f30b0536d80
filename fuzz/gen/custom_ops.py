"""Custom operators of generated programs: ``torch.library.custom_op`` definitions (the
``custom_op`` form, ``fuzz.gen.custom_op_forms``).

Users extend torch with their own operators, and the ones that write into their arguments are
where functionalization does its hardest work: dynamo and AOTAutograd wrap each call in
``auto_functionalized`` (a functional copy of the call plus the writes back into the arguments,
regenerating the views it was given from their base), and inductor's reinplacing pass then tries
to turn that back into an in-place call without copies. Each operator here is opaque to the
compiler (an extern call, its shapes from a fake implementation) and plain torch inside:

- ``assay::scale_shift_(x!, scale, shift) -> ()``: ``x = x * scale + shift`` in place;
- ``assay::mix_(x!, y!, weight) -> ()``: two arguments written (each moved towards the other);
  the program passes two disjoint views of one tensor;
- ``assay::accumulate(acc!, x) -> Tensor``: ``acc += x`` in place, and a new tensor returned;
- ``assay::soft_threshold(x, lam) -> Tensor``: functional, with a backward formula (autograd
  through an opaque call).

A program pastes ``define_assay_ops`` by its source and calls it once above ``class Model``; it
registers the operators unless the process has them already (a campaign worker runs many
programs), so a saved program or ``repro.py`` still needs only torch. This module registers them
at import for the generator's own runs (``fuzz.gen.interpret``). Their results are contiguous and
their fake implementations say so, so a compiled call and an eager one agree on layout.
"""

import torch

NAMESPACE = "assay"
MUTATING = ("scale_shift_", "mix_", "accumulate")
FUNCTIONAL = ("soft_threshold",)


def define_assay_ops():
    """Register the ``assay::`` custom operators (once per process)."""
    if hasattr(torch.ops.assay, "soft_threshold"):
        return

    @torch.library.custom_op("assay::scale_shift_", mutates_args=("x",))
    def scale_shift_(x: torch.Tensor, scale: float, shift: float) -> None:
        x.mul_(scale).add_(shift)

    @torch.library.custom_op("assay::mix_", mutates_args=("x", "y"))
    def mix_(x: torch.Tensor, y: torch.Tensor, weight: float) -> None:
        old_x = x.clone()
        x.lerp_(y, weight)
        y.lerp_(old_x, weight)

    @torch.library.custom_op("assay::accumulate", mutates_args=("acc",))
    def accumulate(acc: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        acc.add_(x)
        return torch.tanh(acc).contiguous()

    @accumulate.register_fake
    def _(acc, x):
        return torch.empty(acc.shape, dtype=acc.dtype, device=acc.device)

    @torch.library.custom_op("assay::soft_threshold", mutates_args=())
    def soft_threshold(x: torch.Tensor, lam: float) -> torch.Tensor:
        return (torch.sign(x) * torch.relu(x.abs() - lam)).contiguous()

    @soft_threshold.register_fake
    def _(x, lam):
        return torch.empty(x.shape, dtype=x.dtype, device=x.device)

    def soft_threshold_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.lam = inputs[1]

    def soft_threshold_backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() > ctx.lam).to(grad.dtype), None

    soft_threshold.register_autograd(soft_threshold_backward, setup_context=soft_threshold_context)


def is_custom(op: str) -> bool:
    """True for a graph node op (``assay::name``) that names one of these operators."""
    return op.startswith(NAMESPACE + "::")


def program_lines() -> list[str]:
    """What a program that calls these operators carries above ``class Model``."""
    return _SOURCE.rstrip("\n").split("\n") + ["", "", "define_assay_ops()"]


def _source() -> str:
    import inspect

    return inspect.getsource(define_assay_ops)  # read once, at import (as fuzz.gen.hop_fns does)


_SOURCE = _source()
define_assay_ops()
