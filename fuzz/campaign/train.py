"""Train mode: one training step of a model, compiled vs eager, judged against float64.

The step (``train_step``): the module in training mode (norm layers use batch statistics and
update their running stats), its outputs, a scalar float64 loss ``sum_i <out_i, w_i>`` with
seeded weights (``oracle.weighted_loss``, the same as ``bwd``'s), ``loss.backward()``, then one SGD step with momentum
(``LR``, ``MOMENTUM``, fixed). Judged: the outputs, the loss, every parameter's gradient, every
parameter after the step (``param:<name>``) and every buffer after it (``buffer:<name>``:
running means and variances, ``num_batches_tracked``).

What is compiled: the model, by the backend's own ``compile_model`` snippet (the one the other
modes and every ``repro.py`` use), called on the module in training mode; the loss, backward
call and optimizer step run eagerly around it. Compiling the whole step function instead would
reach no more of the model's code: dynamo breaks the graph at ``loss.backward()`` (without
compiled autograd), so the model's forward and its AOTAutograd backward are the compiled parts
either way, and buffer mutation in training mode (functionalised, written back) is among them.
What it would add is the optimizer's own kernels: a fixed piece of code, the same for every
model, that costs seconds of compile per test and would need a second compile snippet per
backend. So the optimizer is eager and plain (``foreach=False``).

Randomness: a model random in training mode (dropout and friends are active there, not in
eval) cannot be compared to any compiled RNG; ``Session.train_reference`` runs the eager step
twice under different seeds and skips the test when they differ. Values a rounding-level
perturbation of the float64 step moves beyond tolerance (e.g. batch statistics of a nearly
constant batch) are not judged, like the forward oracle's perturbation rule.

``train_step`` is plain torch: it is copied verbatim into every train-mode ``repro.py``.
"""

from __future__ import annotations

from fuzz.campaign.oracle import weighted_loss

LR, MOMENTUM = 0.01, 0.9  # SGD hyper-parameters of the one step


def train_step(fn, module, inputs, skip=()):
    """One SGD step of ``module`` (already in training mode) through ``fn``; ``(values, names)``.

    Names: ``out<i>`` (outputs), ``loss``, ``grad:<p>``, ``param:<p>`` (after the step) for the
    float parameters ``p`` of ``module`` (a compiled wrapper's ``_orig_mod.`` dropped), then
    ``buffer:<b>`` for its buffers after the step. None when there is no float parameter or no
    differentiable output (``skip``ped outputs are left out of the loss).
    """
    import torch

    params = [(n.replace("_orig_mod.", ""), p) for n, p in module.named_parameters()
              if p.dtype.is_floating_point and p.requires_grad]
    if not params:
        return None
    opt = torch.optim.SGD([p for _, p in params], lr=LR, momentum=MOMENTUM, foreach=False)
    opt.zero_grad(set_to_none=True)
    outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    loss = weighted_loss(outs, skip)
    if loss is None:
        return None
    loss.backward()
    grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for _, p in params]
    opt.step()
    buffers = [(n.replace("_orig_mod.", ""), b) for n, b in module.named_buffers()]
    names = ([f"out{i}" for i in range(len(outs))] + ["loss"] + [f"grad:{n}" for n, _ in params]
             + [f"param:{n}" for n, _ in params] + [f"buffer:{n}" for n, _ in buffers])
    values = ([o.detach() if isinstance(o, torch.Tensor) else o for o in outs] + [loss.detach()] + grads
              + [p.detach().clone() for _, p in params] + [b.detach().clone() for _, b in buffers])
    return values, names


def value_precision(graph, names: list[str], forward: dict, gradient: dict) -> dict:
    """The least precise dtype on each value's path: outputs as in the forward reference
    (``forward``), the loss as its least precise output, a gradient and the parameter it updates
    as ``gradient`` (``grad:<p>`` -> dtype), a submodule's buffer as that submodule's inputs."""
    from fuzz.campaign import oracle
    from fuzz.gen.program import module_attr

    upstream, _ = oracle.path_precision(graph)
    modules = {module_attr(n): n for n in graph.nodes if n.api == "module"}
    out = {}
    for name in names:
        kind, _, leaf = name.partition(":")
        if kind.startswith("out"):
            low = forward.get(name)
        elif kind == "loss":
            low = oracle.least_precise(*(forward.get(f"out{i}") or graph.tensors[o].dtype
                                         for i, o in enumerate(graph.outputs)))
        elif kind in ("grad", "param"):
            low = gradient.get(f"grad:{leaf}")
        else:
            node = modules.get(leaf.split(".")[0])
            low = oracle.least_precise(*(upstream.get(i) for i in node.inputs())) if node is not None else None
        if low:
            out[name] = low
    return out


def ill_conditioned(reference, perturbed: list, where: str = "in training mode") -> dict:
    """name -> why, for the values a rounding-level perturbation of the float64 run (the training
    step; ``bwd``'s outputs and gradients too, ``where`` says which in the reason) moves beyond
    their tolerance (``perturbed``: value lists in ``reference.names`` order), and the integer
    values that float rounding decides (float64 and eager differ, or a probe does)."""
    import torch

    from fuzz.campaign import oracle
    from fuzz.campaign.sensitivity import same_values

    out = {}
    for values in perturbed:
        for i, name in enumerate(reference.names):
            e, r, p = reference.eager[i], reference.ref64[i], values[i]
            if name in out or not all(isinstance(t, torch.Tensor) for t in (e, r, p)):
                continue
            if r.shape != p.shape or r.numel() == 0:
                continue
            if not oracle.is_float(e):
                if not (same_values(e.cpu(), r.cpu()) and same_values(r, p)):
                    out[name] = f"an integer value that float rounding decides {where}"
                continue
            low = oracle.least_precise(oracle.dtype_name_of(e), reference.precision.get(name)) or oracle.dtype_name_of(e)
            atol, rtol, g = oracle.tolerance(low)
            if bool(oracle.value_mismatch(r, r, p, atol, rtol, g, oracle.K).any()):
                out[name] = f"ill-conditioned {where}: a rounding-level perturbation moves it beyond tolerance"
    return out
