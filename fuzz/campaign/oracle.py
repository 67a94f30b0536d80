"""The test oracle: is a compiled result a bug, or float noise?

Eager is the reference, but eager is itself only an approximation of the exact
result. So each model is also run in float64 (float parameters and inputs cast),
and a compiled output element is a mismatch only when its error from that float64
reference is far worse than eager's own error from it::

    bad = |c - ref| > max(K * |e - ref|,  atol + rtol * |ref| + g * max|ref|)

with ``K = 10`` and per-dtype ``atol``/``rtol``/``g`` (``TOLERANCES``: bf16 and fp16
loose, fp32 moderate): a float16/bfloat16 output is judged against float64 by how much worse
than eager's own low-precision error it is. Every element must also keep its class (finite,
NaN, +inf, -inf) where eager and float64 agree on it (``value_mismatch``); a compiled NaN/Inf
where both are finite is a mismatch (``nonfinite``). Integer and bool
outputs are compared exactly against eager. A pass that judged no element at all has the
detail ``NOTHING_JUDGED`` (stats.json's ``judged_share``).

Values that may legitimately differ are not judged: ``fuzz.campaign.sensitivity`` finds them
(random ops, index ties, rounding boundaries, ill-conditioned pivoting, fragile decomposition
gradients) and a ``Reference`` lists them in ``skip``. A value is judged at the tolerance of the
least precise dtype on its path (``path_precision``).

Everything here is plain torch on tensors; ``value_mismatch`` is also copied
verbatim into every ``repro.py`` (``fuzz.campaign.repro``), so a repro judges with exactly
the campaign's criterion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fuzz.campaign.verdict import NOTHING_JUDGED, Kind

K = 10.0
# Rounding-noise draws (fuzz.campaign.rounding) an element flagged against eager may be cleared by:
# one draw's error at an element is as random as eager's. A bfloat16 log_softmax over near-equal values
# (docs/bugs-found.md, twenty-first session) kept 4 elements flagged after draw 0, 3 after draws 0-1,
# none after draws 0-3, while inductor's largest error was a quarter of each draw's.
NOISY_DRAWS = 4
# dtype -> (atol, rtol, g): g scales the output's largest reference magnitude.
TOLERANCES = {
    "float16": (1e-2, 1e-2, 1e-3),
    "bfloat16": (5e-2, 5e-2, 1e-2),
    "float32": (1e-4, 1e-4, 1e-5),
    "float64": (1e-7, 1e-7, 1e-9),
    "complex64": (1e-4, 1e-4, 1e-5),
    "complex128": (1e-7, 1e-7, 1e-9),
}
OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "memoryerror",
               "std::bad_alloc", "failed to allocate")


def tolerance(dtype_name: str, have_ref64: bool = True) -> tuple[float, float, float]:
    atol, rtol, g = TOLERANCES.get(dtype_name, TOLERANCES["float32"])
    if not have_ref64:  # no float64 reference: nothing tells noise from error, be 10x looser
        atol, rtol, g = atol * 10, rtol * 10, g * 10
    return atol, rtol, g


# Float dtypes from the least to the most precise (complex as its real part).
PRECISION = {"bfloat16": 0, "float16": 1, "float32": 2, "complex64": 2, "float64": 3, "complex128": 3}


def least_precise(*dtypes: str | None) -> str | None:
    floats = [d for d in dtypes if d in PRECISION]
    return min(floats, key=PRECISION.__getitem__) if floats else None


def path_precision(graph) -> tuple[dict, dict]:
    """Per tensor, the least precise float dtype on its path: ``upstream[t]`` over ``t`` and
    everything it is computed from (what limits a forward value), ``downstream[t]`` over ``t`` and
    everything computed from it (what limits the gradient that flows back to ``t``). A float64
    gradient that went through a ``.half()`` carries half-precision noise, and a compiler may
    round at other places on that path (inductor computes fp16 ops in fp32 and rounds once)."""
    up = {name: least_precise(info.dtype) for name, info in graph.tensors.items()}
    for node in graph.nodes:
        low = least_precise(*(up.get(i) for i in node.inputs()))
        for o in node.outputs:
            up[o] = least_precise(up.get(o), low)
    down = {name: least_precise(info.dtype) for name, info in graph.tensors.items()}
    for node in reversed(graph.nodes):
        low = least_precise(*(down.get(o) for o in node.outputs))
        for i in node.inputs():
            down[i] = least_precise(down.get(i), low)
    return up, down


def nonfinite_downstream(graph, eager_env: dict) -> dict:
    """Tensor name -> the NaN or infinite forward value (eager) that its gradient flows back
    through: the tensor itself, or a value computed from it."""
    import torch

    out = {}
    for name, t in eager_env.items():
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()) and not bool(t.isfinite().all()):
            out[name] = name
    for node in reversed(graph.nodes):
        hit = next((out[o] for o in node.outputs if o in out), None)
        if hit is not None:
            for i in node.inputs():
                out.setdefault(i, hit)
    return out


def value_mismatch(ref, eager, actual, atol, rtol, g, k, limit=None, classes=True, alt=None):
    """Bool mask of elements where ``actual`` is wrong, judged against ``eager`` and ``ref``.

    - Class rule: where eager and the float64 ``ref`` agree on an element's class (finite / NaN
      / +inf / -inf), ``actual`` must have it too. Where they disagree (eager overflowed or lost
      precision where float64 did not), eager is no reference and the class is not judged.
      Without ``classes`` (gradients: a derivative at a NaN or infinite point has no defined
      value) only a non-finite ``actual`` where eager and ``ref`` are finite is wrong. ``alt``: fuzz.campaign.lowprec.
    - Value rule: where ``ref`` and ``eager`` are finite (and below ``limit`` in magnitude, near
      the dtype's overflow, where a finite or infinite result are both right), ``actual`` must
      not be far worse than ``eager``: ``|actual - ref| > max(k |eager - ref|, atol + rtol |ref|
      + g max|ref|)`` is wrong, the max over every finite element, ``alt`` or not: ``alt`` only
      ever clears elements (so a run with none flagged without it needs none: Reference.low32_fn).
    """
    import torch

    def real(t):
        t = t.detach().to("cpu")
        if t.is_complex():
            t = torch.view_as_real(t.resolve_conj())
        return t.to(torch.float64)

    def cls(t):  # 0 finite, 1 NaN, 2 +inf, 3 -inf
        return torch.where(t.isnan(), 1, torch.where(t == float("inf"), 2, torch.where(t == -float("inf"), 3, 0)))

    ref, eager, actual = real(ref), real(eager), real(actual)
    c_ref, c_eager, c_actual = cls(ref), cls(eager), cls(actual)
    keep = (cls(real(alt)) == c_eager) if alt is not None and alt.shape == eager.shape else c_eager >= 0
    wrong_class = (((c_ref == c_eager) & (c_actual != c_eager)) if classes else (c_ref != c_ref)) & keep
    if limit is not None:
        # near overflow a finite value may legitimately become inf (and back); never NaN
        near = ((c_ref == 0) & (ref.abs() >= limit)) | ((c_eager == 0) & (eager.abs() >= limit))
        wrong_class &= ~near | (c_actual == 1)
    finite = (c_ref == 0) & (c_eager == 0)
    if limit is not None:
        finite &= (ref.abs() < limit) & (eager.abs() < limit)
    if not bool((judged := finite & keep).any()):
        return wrong_class
    scale = float(ref[finite].abs().max())
    err_e = torch.where(judged, (eager - ref).abs(), torch.zeros_like(ref))
    err_c = (actual - ref).abs()
    threshold = torch.maximum(k * err_e, atol + rtol * ref.abs() + g * scale)
    return wrong_class | (judged & (~torch.isfinite(actual) | (err_c > threshold)))


def judged_elements(ref, eager, limit=None) -> int:
    """How many elements ``value_mismatch`` judges: all of them on their class, except those near
    overflow (``limit``) where eager and float64 are both finite (judged on nothing)."""
    import torch

    if ref.is_complex():
        ref, eager = torch.view_as_real(ref.resolve_conj()), torch.view_as_real(eager.resolve_conj())
    if limit is None:
        return ref.numel()
    ref, eager = ref.detach().cpu().to(torch.float64), eager.detach().cpu().to(torch.float64)
    near = (torch.isfinite(ref) & (ref.abs() >= limit)) | (torch.isfinite(eager) & (eager.abs() >= limit))
    return int((~near).sum())


def weighted_loss(outs, skip=()):
    """``sum_i <out_i, w_i>`` in float64 over the float outputs that require grad (``out<i>`` in
    ``skip`` left out), ``w_i`` seeded standard-normal weights; None when no output counts."""
    import torch

    gen = torch.Generator().manual_seed(1234)
    terms = []
    for i, o in enumerate(outs):
        if not (isinstance(o, torch.Tensor) and o.dtype.is_floating_point):
            continue
        w = torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.device)
        if o.requires_grad and f"out{i}" not in skip:
            terms.append((o.to(torch.float64) * w).sum())
    return torch.stack(terms).sum() if terms else None


def outputs_and_grads(fn, module, param_names, inputs, input_names, skip=(), dtype64=False):
    """Run ``fn(*inputs)``; its outputs, then the gradients of ``sum_i <out_i, w_i>``.

    ``w_i`` are seeded float64 weights (one per float output; ``skip``ped outputs
    are left out of the sum); gradients are taken w.r.t. the inputs that require grad
    and the parameters of ``module`` named ``param_names`` (a compiled wrapper's
    ``_orig_mod.`` prefix is ignored). Returns ``(values, names)`` (names of the
    gradients, ``grad:<name>``) or ``None`` when nothing is differentiable. A parameter
    the backend's module lacks gives ``None`` (not judged).
    """
    import torch

    # Which inputs require grad is read before the call: an input forward writes in place with a
    # value that requires grad requires grad afterwards, in one backend's run and not in another's.
    leaves = [(n, t) for n, t in zip(input_names, inputs) if isinstance(t, torch.Tensor) and t.requires_grad]
    outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    loss = weighted_loss(outs, skip)
    if loss is None:
        return None
    params = {n.replace("_orig_mod.", ""): p for n, p in module.named_parameters()}
    names, wrt = [], []
    for n, t in leaves:
        names.append(f"grad:{n}")
        wrt.append(t)
    for n in param_names:
        names.append(f"grad:{n}")
        wrt.append(params.get(n))
    present = [w for w in wrt if w is not None]
    grads = iter(torch.autograd.grad(loss, present, allow_unused=True))
    values = []
    for w in wrt:
        g = next(grads) if w is not None else None
        if w is not None and g is None:
            g = torch.zeros_like(w)
        values.append(g)
    return [o.detach() if isinstance(o, torch.Tensor) else o for o in outs] + values, names


def dtype_name_of(t) -> str:
    return str(t.dtype).replace("torch.", "")


def is_float(t) -> bool:
    return t.dtype.is_floating_point or t.dtype.is_complex


# ---------------------------------------------------------------------------
# judging one run


@dataclass
class Reference:
    """What a compiled run is judged against: named values (outputs, then gradients)."""

    names: list[str]
    eager: list
    ref64: list | None = None
    skip: dict = field(default_factory=dict)     # name -> reason not judged
    precision: dict = field(default_factory=dict)  # name -> least precise dtype on its path (path_precision)
    low32: list | None = None                    # float32-intermediate values (fuzz.campaign.lowprec)
    # Makes ``low32`` when it is first needed: only a run with an element flagged without it pays
    # for the float32 run (the alternative reference only ever clears elements)
    low32_fn: object = field(default=None, repr=False, compare=False)
    low32_bare: list | None = None               # the same with explicit low-precision casts made float32 too
    low32_bare_fn: object = field(default=None, repr=False, compare=False)
    # float64 runs with rounding noise per operator (fuzz.campaign.rounding), one list per draw
    noisy: list = field(default_factory=list)
    noisy_fn: object = field(default=None, repr=False, compare=False)  # makes draw ``d`` (seed d), on need

    def alternative(self, i: int):
        """``low32[i]`` (made by ``low32_fn`` on first use), or None."""
        return self._deferred("low32", i)

    def alternatives(self, i: int) -> list:
        """The float32-intermediate runs' element ``i``: casts kept, then casts made float32 (each made
        on first use, by ``low32_fn`` / ``low32_bare_fn``); those that exist."""
        out = [self.alternative(i)]
        if out[0] is not None or self.low32_bare_fn is not None or self.low32_bare is not None:
            out.append(self._deferred("low32_bare", i))
        return [a for a in out if a is not None]

    def noisy_values(self, i: int):
        """Element ``i`` of each rounding-noise draw in turn, up to ``NOISY_DRAWS``; a draw is made by
        ``noisy_fn(d)`` when first asked for (a caller stops asking once nothing is left to clear)."""
        import torch

        for d in range(NOISY_DRAWS):
            if d == len(self.noisy):
                draw = self.noisy_fn(d) if self.noisy_fn is not None else None
                if draw is None:
                    self.noisy_fn = None
                    return
                self.noisy.append(draw)
            value = self.noisy[d][i] if i < len(self.noisy[d]) else None
            if isinstance(value, torch.Tensor):
                yield value

    def _deferred(self, field_name: str, i: int):
        """Element ``i`` of the list ``field_name``, made by its ``<field_name>_fn`` the first time."""
        import torch

        values, make = getattr(self, field_name), getattr(self, field_name + "_fn")
        if values is None and make is not None:
            setattr(self, field_name + "_fn", None)
            values = make()
            setattr(self, field_name, values)
        value = values[i] if values is not None and i < len(values) else None
        return value if isinstance(value, torch.Tensor) else None


@dataclass
class Judgement:
    kind: Kind                                   # PASS | MISMATCH
    detail: str = ""                             # values | shape | dtype | nonfinite | count | stride
    diff: dict | None = None
    checked: list = field(default_factory=list)  # names compared
    skipped: dict = field(default_factory=dict)


def layout_of(t, view: bool = False) -> list:
    """The strides that matter: those of dims longer than 1 (a size-1 dim's stride is arbitrary);
    with ``view``, only their order (those dims from the smallest stride up)."""
    dims = [(s, d) for d, (s, n) in enumerate(zip(t.stride(), t.shape)) if n > 1]
    return [d for s, d in sorted(dims)] if view else [s for s, d in dims]


def strides_differ(eager, compiled) -> bool:
    """Whether ``compiled`` breaks the strides inductor promises for an output like ``eager``:
    exact strides for an output that is not a view, their order for a view of an intermediate or
    an input (inductor's GraphLowering requires a view output's stride order only, so a view may
    come back compact or re-laid with the same order)."""
    view = eager._is_view()
    return layout_of(eager, view) != layout_of(compiled, view)


def _has_no_data(t) -> bool:
    """A fake or meta tensor: shapes and dtypes only, no values to compare."""
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(t, FakeTensor) or t.is_meta


def judge(reference: Reference, actual: list, k: float = K, strides: bool = False) -> Judgement:
    """Compare a compiled run's values (same order as ``reference.names``) with the reference; with
    ``strides``, a forward output whose values agree must also have eager's strides (``strides_differ``)."""
    import torch

    skipped = dict(reference.skip)
    if len(actual) != len(reference.names):
        return Judgement(Kind.MISMATCH, "count", {"expected": len(reference.names), "got": len(actual)})
    checked = []
    worst = None
    judged = 0  # elements judged (on their class, their value or both)
    for i, name in enumerate(reference.names):
        if name in skipped:
            continue
        e, a = reference.eager[i], actual[i]
        if a is None and name.startswith("grad:"):
            skipped[name] = "the backend's module has no such parameter"
            continue
        if not isinstance(a, torch.Tensor) or not isinstance(e, torch.Tensor):
            if a is None and e is None:
                continue
            return Judgement(Kind.MISMATCH, "type", {"where": name, "expected": type(e).__name__, "got": type(a).__name__})
        if _has_no_data(a) and not _has_no_data(e):
            # an exported program that lifted a constant made while tracing autograd (torch.func.grad
            # in forward) returns a FakeTensor: reading its values raises inside the oracle (four
            # "oracle errors" of the fourteenth session's export campaign) or, worse, passes unjudged
            return Judgement(Kind.MISMATCH, "type", {"where": name, "expected": type(e).__name__,
                                                     "got": f"{type(a).__name__} on {a.device} (no data)"})
        checked.append(name)
        if a.dtype != e.dtype:
            return Judgement(Kind.MISMATCH, "dtype", {"where": name, "expected": dtype_name_of(e), "got": dtype_name_of(a)}, checked, skipped)
        if tuple(a.shape) != tuple(e.shape):
            return Judgement(Kind.MISMATCH, "shape", {"where": name, "expected": list(e.shape), "got": list(a.shape)}, checked, skipped)
        if e.numel() == 0:
            continue
        a_cpu, e_cpu = a.detach().cpu(), e.detach().cpu()
        if is_float(e):
            ref = reference.ref64[i] if reference.ref64 is not None else None
            have64 = ref is not None and tuple(ref.shape) == tuple(e.shape)
            if not have64:
                ref = e_cpu
            atol, rtol, g = tolerance(least_precise(dtype_name_of(e), reference.precision.get(name)) or
                                      dtype_name_of(e), have64)
            limit = 0.5 * torch.finfo(e.dtype).max if e.dtype.is_floating_point else None
            classes = not name.startswith("grad:")
            bad = value_mismatch(ref, e_cpu, a_cpu, atol, rtol, g, k, limit, classes=classes)
            # the float32-intermediate runs (what inductor computes by design: fuzz.campaign.lowprec; with
            # the model's explicit casts kept, then dropped): under each, classes it does not share with
            # eager are not judged, and it is a second eager for values (flagged only beyond the
            # tolerance rule against its error too); an element either run explains is not flagged
            for alt in (reference.alternatives(i) if bool(bad.any()) else []):
                if tuple(alt.shape) != tuple(e.shape):
                    continue
                still = value_mismatch(ref, e_cpu, a_cpu, atol, rtol, g, k, limit, classes=classes, alt=alt) \
                    if classes else bad
                bad = bad & (still & value_mismatch(ref, alt, a_cpu, atol, rtol, g, k, limit, classes=classes))
            # the rounding-noise runs as more eagers: flagged only beyond K times the error of every one
            # (one draw's error at an element is as random as eager's; several bound what noise does there)
            for noisy in (reference.noisy_values(i) if bool(bad.any()) and have64 else ()):
                if tuple(noisy.shape) == tuple(e.shape):
                    bad &= value_mismatch(ref, noisy, a_cpu, atol, rtol, g, k, limit, classes=classes)
                if not bool(bad.any()):
                    break
            judged += judged_elements(ref, e_cpu, limit)
            if bool(bad.any()):
                summary = _summarise(name, bad, ref, e_cpu, a_cpu, (atol, rtol, g), have64)
                if worst is None or summary["max_abs"] > worst["max_abs"]:
                    worst = summary
        else:
            bad = a_cpu != e_cpu
            # an integer/bool value computed from low-precision floats (isin, comparisons, casts): the
            # float32-intermediate runs are second eagers here too, so an element where the compiled
            # value equals one of theirs is what inductor computes by design (fuzz.campaign.lowprec)
            for alt in (reference.alternatives(i) if bool(bad.any()) else []):
                if tuple(alt.shape) == tuple(e.shape) and alt.dtype == e.dtype:
                    bad &= a_cpu != alt.detach().cpu()
            judged += bad.numel()
            if bool(bad.any()):
                summary = _summarise(name, bad, e_cpu, e_cpu, a_cpu, (0, 0, 0), False)
                if worst is None or summary["max_abs"] > worst["max_abs"]:
                    worst = summary
    if worst is not None:
        kind = "nonfinite" if worst.get("nonfinite") else "values"
        return Judgement(Kind.MISMATCH, kind, worst, checked, skipped)
    for i, name in enumerate(reference.names if strides else ()):
        e, a = reference.eager[i], actual[i]
        if (":" not in name and name in checked and e.numel() and a.numel()
                and strides_differ(e, a)):  # outputs only: no gradient or written state
            return Judgement(Kind.MISMATCH, "stride", {"where": name, "shape": list(e.shape), "expected": list(e.stride()),
                                                       "got": list(a.stride())}, checked, skipped)
    return Judgement(Kind.PASS, "" if judged else NOTHING_JUDGED, None, checked, skipped)


def _summarise(name, bad, ref, eager, actual, tol, have64) -> dict:
    import torch

    def real(t):
        t = torch.view_as_real(t.resolve_conj()) if t.is_complex() else t
        return t.to(torch.float64)

    r, e, a = real(ref), real(eager), real(actual)
    err = torch.where(bad, (a - r).abs(), torch.zeros_like(r))
    err = torch.nan_to_num(err, nan=float("inf"))
    flat = int(err.reshape(-1).argmax())
    idx = [int(i) for i in torch.unravel_index(torch.tensor(flat), tuple(r.shape))] if r.dim() else []
    ref_v, act_v, eag_v = float(r.reshape(-1)[flat]), float(a.reshape(-1)[flat]), float(e.reshape(-1)[flat])
    max_abs = float(err.reshape(-1)[flat])
    return {
        "where": name,
        "index": idx,
        "count": int(bad.sum()),
        "numel": int(bad.numel()),
        "max_abs": max_abs,
        "max_rel": max_abs / max(abs(ref_v), 1e-12) if max_abs != float("inf") else float("inf"),
        "reference": ref_v,
        "eager": eag_v,
        "compiled": act_v,
        "eager_abs_err": abs(eag_v - ref_v),
        "reference_is_float64": bool(have64),
        "tolerance": {"atol": tol[0], "rtol": tol[1], "g": tol[2], "k": K},
        "nonfinite": not (act_v == act_v and abs(act_v) != float("inf")),
    }


class OracleError(Exception):
    """The oracle's own analysis failed on a model: its tests are ``oracle_error``, not passes."""


# Dynamo could not capture a higher-order operator's function (a scan whose init and carry differ in
# strides, a loop body that breaks the graph): torch's eager operator traces its function with the
# same dynamo and raises the same, so the program, not the compiler, is at fault.
INVALID_PROGRAM_TYPES = ("UncapturedHigherOrderOpError",)


def classify_exception(exc_type: str, message: str) -> Kind:
    """``oom`` for allocation failures, ``invalid`` for a program torch's own eager operators reject
    (``INVALID_PROGRAM_TYPES``), else ``crash``."""
    text = f"{exc_type} {message}".lower()
    if any(m in text for m in OOM_MARKERS):
        return Kind.OOM
    if exc_type.rsplit(".", 1)[-1] in INVALID_PROGRAM_TYPES:
        return Kind.INVALID
    return Kind.CRASH
