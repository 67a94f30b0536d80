"""The rounding-noise reference: the float64 run with each operator's float outputs moved by up to
one unit in the last place of the dtype that operator computes in, in the model.

Why: the float64 reference and the input perturbation probes (``sensitivity.PERTURB``) do not
see an operator that magnifies the rounding of an *intermediate*. ``atanh(layer_norm(x))`` over
two elements: the norm's outputs sit within 1e-5 of +-1, where one float32 ulp of the norm is
0.4% of ``1 - x`` and moves ``atanh`` by 2e-3; perturbing ``x`` moves nothing, since the norm
divides it out. Eager happened to land 1.3e-4 from float64 and inductor, whose norm rounds
differently, 2.1e-3: ten times eager's error, flagged, and not a bug (the eighth session's
campaign, docs/bugs-found.md).

The oracle (``oracle.judge``) uses this run as a second eager: an element is flagged only where
the compiled error is beyond ``K`` times eager's *and* ``K`` times this run's (and beyond the
tolerance), and its NaN/inf class is not judged where this run's class differs from float64's.
One draw's error at an element is as random as eager's, so while an element is still flagged
the oracle draws again with the next seed, up to ``oracle.NOISY_DRAWS`` runs: an element is
reported only beyond K times the error of every draw.
So an element that an ulp of noise per operator moves far still has to be K times further off
to be reported, and a real bug there (a wrong formula, a wrong element) still is.

It is made only when a compiled run first has an element flagged (``Reference.noisy_fn``), from
copies of the inputs and state taken when the reference was built. The noise goes in node by node
through the graph interpreter (``fuzz.gen.interpret``), in place, so a view's writes still reach
its base as in the program (replacing a view's value with a noisy copy cut that link and changed
the results of view-writing models). As a safeguard the same run without noise must first give
the float64 reference bit for bit, or there is no noisy run.
"""

from __future__ import annotations

from fuzz.campaign.sensitivity import same_values

# Unit roundoff (half an ulp at 1) of each float dtype: the noise is up to twice this, one ulp.
ROUNDOFF = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8, "float32": 2.0 ** -24, "float64": 2.0 ** -53,
            "complex64": 2.0 ** -24, "complex128": 2.0 ** -53}


def noisy_outputs(graph, state: dict, inputs: list, seed: int = 0, noise: bool = True, order=None) -> list | None:
    """The graph's outputs computed in float64 (as the float64 reference is) with every node's
    float outputs multiplied by ``1 + 2u r`` (``u`` the roundoff of the node's own output dtype,
    ``r`` uniform in [-1, 1], seeded; without ``noise``, as they are); None when the run fails."""
    import torch

    from fuzz.gen import interpret
    from fuzz.gen.program import tensor_identifiers

    gen = torch.Generator().manual_seed(seed)

    def up(t):
        if not isinstance(t, torch.Tensor):
            return t
        t = t.detach().cpu()
        return t.double() if t.is_floating_point() else t.to(torch.complex128) if t.is_complex() else t.clone()

    names = tensor_identifiers(graph)
    leaves = {name: up(t) for name, t in zip(order or graph.inputs, inputs)}
    leaves.update({p: up(state[names[p]]) for p in graph.params if names[p] in state})

    def shake(node, outs, env):
        for name in node.outputs if noise else ():
            t, info = env.get(name), graph.tensors.get(name)
            u = ROUNDOFF.get(info.dtype) if info is not None else None
            if u is None or not isinstance(t, torch.Tensor) or not (t.is_floating_point() or t.is_complex()):
                continue
            r = torch.rand(t.shape, generator=gen, dtype=torch.float64) * 2 - 1
            try:  # in place: a view keeps writing through to its base, as in the program
                t.mul_((1 + 2 * u * r).to(t.dtype if t.is_floating_point() else torch.float64))
            except RuntimeError:  # e.g. an expanded view (several elements share one location)
                continue
        return None

    try:
        subs = interpret.build_submodules(graph, "cpu", {k: up(v) for k, v in state.items()})
        for m in subs.values():
            m.double()
        with torch.no_grad():
            env = interpret.run_graph(graph, leaves, subs, "cpu", check=False, on_node=shake)
        return [env.get(o) for o in graph.outputs]
    except Exception:  # noqa: BLE001 - no noisy run: elements judged as before
        return None


def deferred_noisy_outputs(graph, state: dict, inputs: list, pad: int, ref64: list | None, order=None):
    """A function of a draw number ``d`` making ``noisy_outputs`` with seed ``d`` (then ``pad`` Nones,
    for the written state) from copies of ``state`` and ``inputs`` taken now, to be called only when
    needed (``Reference.noisy_values``); it gives None unless the interpreter's noise-free run equals
    ``ref64`` (the program's float64 outputs) on every float output (checked once). None without a
    float64 reference."""
    import torch

    if ref64 is None:
        return None
    state = {k: v.detach().clone() for k, v in state.items()}
    inputs = [t.detach().clone() if isinstance(t, torch.Tensor) else t for t in inputs]
    expected = list(ref64[:len(graph.outputs)])

    checked = []  # [whether the noise-free run gave ref64], once known

    def make(d: int = 0):
        if not checked:
            clean = noisy_outputs(graph, state, inputs, noise=False, order=order)
            checked.append(clean is not None and len(clean) == len(expected) and all(
                same_values(c, r) for c, r in zip(clean, expected) if isinstance(r, torch.Tensor) and r.is_floating_point()))
        if not checked[0]:
            return None  # the interpreter computes this graph otherwise: no noisy run
        out = noisy_outputs(graph, state, inputs, seed=d, order=order)
        return None if out is None else out + [None] * pad

    return make
