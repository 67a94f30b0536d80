"""The test oracle: is a compiled result a bug, or float noise?

Eager is the reference, but eager is itself only an approximation of the exact
result. So each model is also run in float64 (float parameters and inputs cast),
and a compiled output element is a mismatch only when its error from that float64
reference is far worse than eager's own error from it::

    bad = |c - ref| > max(K * |e - ref|,  atol + rtol * |ref| + g * max|ref|)

with ``K = 10`` and per-dtype ``atol``/``rtol``/``g`` (``TOLERANCES``: bf16 and fp16
loose, fp32 moderate). Elements that are NaN/Inf in the reference or in eager are
never judged; a compiled NaN/Inf where both are finite is a mismatch (``nonfinite``).
Integer and bool outputs are compared exactly against eager.

Values that may legitimately differ are not judged (``sensitive_tensors``), together
with everything computed from them:

- outputs of random or uninitialised-memory ops (``empty``, ``rand``, ``dropout``...);
- index outputs of ``argmax``/``argmin``/``max.dim``/``topk``/``sort``/``mode``/...
  when the op's input has ties or near-ties (NNSmith's argmax false alarms);
- integer/bool values derived from float rounding: ones whose float64 run differs
  from eager, or that change when float leaves are perturbed by a few ulps of their
  dtype (a value close to a rounding or comparison boundary).

Everything here is plain torch on tensors; ``value_mismatch`` is also copied
verbatim into every ``repro.py`` (``fuzz.campaign.repro``), so a repro judges with exactly
the campaign's criterion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fuzz.campaign.verdict import Kind

K = 10.0
# dtype -> (atol, rtol, g): g scales the output's largest reference magnitude.
TOLERANCES = {
    "float16": (1e-2, 1e-2, 1e-3),
    "bfloat16": (5e-2, 5e-2, 1e-2),
    "float32": (1e-4, 1e-4, 1e-5),
    "float64": (1e-7, 1e-7, 1e-9),
    "complex64": (1e-4, 1e-4, 1e-5),
    "complex128": (1e-7, 1e-7, 1e-9),
}
# Relative noise used to find values that sit on a rounding boundary.
PERTURB = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-6, "float64": 1e-12}

NONDETERMINISTIC_OPS = {
    "empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided", "empty_permuted",
    "rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "randperm",
    "bernoulli", "multinomial", "normal", "uniform", "exponential", "geometric", "cauchy",
    "log_normal", "poisson", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "feature_dropout", "native_dropout", "rrelu", "rrelu_with_noise",
    "fractional_max_pool2d", "fractional_max_pool3d", "fractional_max_pool2d_with_indices",
    "fractional_max_pool3d_with_indices", "gumbel_softmax", "set_", "resize_", "resize_as_",
}
# Ops whose integer outputs are positions chosen among (possibly equal) values.
INDEX_OPS = {
    "argmax", "argmin", "max", "min", "topk", "sort", "argsort", "msort", "kthvalue", "mode",
    "median", "nanmedian", "cummax", "cummin", "max_pool1d", "max_pool2d", "max_pool3d",
    "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "maxpool1d", "maxpool2d", "maxpool3d", "adaptivemaxpool1d", "adaptivemaxpool2d", "adaptivemaxpool3d",
    "unique", "unique_consecutive", "unique_dim", "max_unpool2d",
}
# Index ops whose *values* also depend on tie-breaking.
TIE_VALUE_OPS = {"mode"}
# Factorisations with partial pivoting: the pivot in each column is an argmax of magnitudes, so on
# a singular or ill-conditioned matrix it is chosen by rounding noise, and the factors (and the
# pivots) jump with a 1-ulp change of the input. Their outputs are judged only on well-conditioned
# inputs (``PIVOT_COND_LIMIT``, 2-norm condition number in float64).
PIVOTING_OPS = {
    "linalg_det", "det", "logdet", "linalg_slogdet", "slogdet", "linalg_lu", "lu", "linalg_lu_factor",
    "linalg_lu_factor_ex", "lu_with_info", "linalg_solve", "linalg_solve_ex", "solve", "linalg_inv",
    "linalg_inv_ex", "inverse", "lu_solve", "linalg_lu_solve",
}
PIVOT_COND_LIMIT = 1e4

OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "memoryerror",
               "std::bad_alloc", "failed to allocate")


def tolerance(dtype_name: str, have_ref64: bool = True) -> tuple[float, float, float]:
    atol, rtol, g = TOLERANCES.get(dtype_name, TOLERANCES["float32"])
    if not have_ref64:  # no float64 reference: nothing tells noise from error, be 10x looser
        atol, rtol, g = atol * 10, rtol * 10, g * 10
    return atol, rtol, g


def value_mismatch(ref, eager, actual, atol, rtol, g, k, limit=None):
    """Bool mask of elements where ``actual`` is far worse than ``eager``, both against ``ref``.

    Elements non-finite in ``ref`` or ``eager`` (or beyond ``limit`` in magnitude: near the
    dtype's overflow) are never flagged; a non-finite ``actual`` where both are finite is.
    """
    import torch

    def real(t):
        t = t.detach().to("cpu")
        if t.is_complex():
            t = torch.view_as_real(t)
        return t.to(torch.float64)

    ref, eager, actual = real(ref), real(eager), real(actual)
    judged = torch.isfinite(ref) & torch.isfinite(eager)
    if limit is not None:
        judged &= (ref.abs() < limit) & (eager.abs() < limit)
    if not bool(judged.any()):
        return torch.zeros_like(judged)
    scale = float(ref[judged].abs().max())
    err_e = torch.where(judged, (eager - ref).abs(), torch.zeros_like(ref))
    err_c = (actual - ref).abs()
    threshold = torch.maximum(k * err_e, atol + rtol * ref.abs() + g * scale)
    return judged & (~torch.isfinite(actual) | (err_c > threshold))


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

    outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    gen = torch.Generator().manual_seed(1234)
    terms = []
    for i, o in enumerate(outs):
        if not (isinstance(o, torch.Tensor) and o.dtype.is_floating_point):
            continue
        w = torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.device)
        if o.requires_grad and f"out{i}" not in skip:
            terms.append((o.to(torch.float64) * w).sum())
    if not terms:
        return None
    loss = torch.stack(terms).sum()
    params = {n.replace("_orig_mod.", ""): p for n, p in module.named_parameters()}
    names, wrt = [], []
    for n, t in zip(input_names, inputs):
        if isinstance(t, torch.Tensor) and t.requires_grad:
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


def _dtype_name(t) -> str:
    return str(t.dtype).replace("torch.", "")


def is_float(t) -> bool:
    return t.dtype.is_floating_point or t.dtype.is_complex


# ---------------------------------------------------------------------------
# which values may legitimately differ


def _short(op: str) -> str:
    return op.split("::")[-1].split(".")[-1].lower().strip("_")


def same_values(a, b) -> bool:
    """Bitwise-equal results (NaN equal to NaN): the test for a deterministic op."""
    import torch

    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return True
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    a, b = a.detach().cpu(), b.detach().cpu()
    if a.is_floating_point() or a.is_complex():
        return bool(torch.equal(torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0))
                    and torch.equal(a.isnan(), b.isnan()))
    return bool(torch.equal(a, b))


def _has_ties(t) -> bool:
    import torch

    if t is None or t.numel() < 2:
        return False
    flat = t.detach().reshape(-1).to("cpu")
    if flat.is_complex():
        return True
    if flat.dtype == torch.bool:
        return True
    if not flat.dtype.is_floating_point:
        return flat.unique().numel() < flat.numel()
    flat = flat.to(torch.float64)
    flat = flat[torch.isfinite(flat)]
    if flat.numel() < t.numel():
        return True  # NaN/Inf among the candidates: positions are not meaningful
    s, _ = flat.sort()
    atol, rtol, _ = TOLERANCES.get(_dtype_name(t), TOLERANCES["float32"])
    gaps = s[1:] - s[:-1]
    return bool((gaps <= atol + rtol * s[1:].abs()).any())


# Index ops whose ties can be located: the slice along ``dim`` each output position was chosen from.
# (op -> (order, which sorted positions decide)): "top" = largest first, "bottom" = smallest first.
SLICE_TIE_OPS = {"argmax": "top1", "max": "top1", "argmin": "bottom1", "min": "bottom1", "topk": "topk",
                 "sort": "all", "argsort": "all", "msort": "all", "kthvalue": "kth", "median": "median",
                 "nanmedian": "median"}


def _arg(node, position: int, name: str, default=None):
    """A literal argument of a call, by keyword or by position (the tensor is position 0)."""
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[position] if len(node.args) > position else default


def _slice_ties(node, source, short: str) -> bool | None:
    """Whether the positions ``node`` picks are decided by a tie *in the slices it picks from*:
    the top candidates of an argmax/max.dim slice, the first k+1 of a topk slice, the neighbours
    of the k-th value, any two values of one sort slice. None when it cannot tell (an argument it
    cannot read): the caller then looks for ties anywhere in the input, as before."""
    import torch

    kind = SLICE_TIE_OPS.get(short)
    if kind is None or source is None or not source.dtype.is_floating_point or source.dim() == 0:
        return None
    if short in ("sort", "argsort") and _arg(node, 3, "stable", False) is True:
        return False  # a stable sort breaks ties by position: eager and compiled must agree
    dim = _arg(node, 2 if kind in ("topk", "kth") else 1, "dim", 0 if short == "msort" else
               (None if kind in ("top1", "bottom1") else -1))
    if short == "msort":
        dim = 0
    if isinstance(dim, bool) or not (dim is None or isinstance(dim, int)):
        return None
    x = source.detach().to("cpu", torch.float64)
    try:
        x = x.reshape(-1) if dim is None else x.movedim(dim, -1)
    except (IndexError, RuntimeError):
        return None
    n = x.shape[-1]
    if n < 2:
        return False
    if not bool(torch.isfinite(x).all()):
        return True  # NaN/Inf among the candidates: positions are not meaningful
    largest = kind == "top1" or (kind == "topk" and _arg(node, 3, "largest", True) is not False) or \
        (kind == "all" and _arg(node, 2, "descending", False) is True)
    v, _ = x.sort(dim=-1, descending=largest)
    atol, rtol, _ = TOLERANCES.get(_dtype_name(source), TOLERANCES["float32"])
    # tied[i]: v[i] ~ v[i+1] within the noise the value judge allows (K x tolerance): closer
    # candidates may swap under a compiled run's legitimate rounding.
    tied = (v[..., 1:] - v[..., :-1]).abs() <= K * (atol + rtol * v[..., 1:].abs())
    if kind in ("top1", "bottom1"):
        return bool(tied[..., 0].any())
    if kind == "topk":
        k = _arg(node, 1, "k")
        if not isinstance(k, int) or isinstance(k, bool):
            return None
        return bool(tied[..., : max(0, min(k, n - 1))].any())
    if kind in ("kth", "median"):
        k = (n - 1) // 2 + 1 if kind == "median" else _arg(node, 1, "k")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= n:
            return None
        near = [i for i in (k - 2, k - 1) if 0 <= i < n - 1]  # pairs (k-1, k) and (k, k+1), 1-based
        return bool(tied[..., near].any()) if near else False
    return bool(tied.any())


# Index ops whose outputs carry no gradient (ties there do not change where gradients flow).
INDEX_ONLY_OPS = {"argmax", "argmin", "argsort", "unique", "unique_consecutive", "unique_dim"}


def routes_gradient(graph, tensor: str) -> bool:
    """Whether a sensitive integer value comes from an op whose ties also steer gradients (max.dim, sort...)."""
    node = graph.producer(tensor)
    if node is None:
        return True
    short = _short(node.op)
    return short in INDEX_OPS and short not in INDEX_ONLY_OPS


def _square_operands(node, *envs) -> list:
    """The node's square (batched) matrix operands, from the first env that has each: a pivoting
    op's matrix may be any argument (``linalg_solve(A, b)``, ``lu_solve(LU, pivots, b)``) and may
    be a parameter of the model rather than an input."""
    found = []
    for name in dict.fromkeys(node.inputs()):
        t = next((env[name] for env in envs if env.get(name) is not None), None)
        if t is not None and t.dim() >= 2 and t.shape[-1] == t.shape[-2] and t.numel() > 0:
            found.append(t)
    return found


def _ill_conditioned(*matrices) -> bool:
    """Whether any of these square (batched) matrices has a condition number above
    ``PIVOT_COND_LIMIT`` (or is singular) in float64; True when it cannot be told."""
    import torch

    for t in matrices:
        if not (t.is_floating_point() or t.is_complex()):
            return True   # cannot tell
        try:
            cond = torch.linalg.cond(t.detach().to("cpu", torch.complex128 if t.is_complex() else torch.float64))
        except Exception:  # noqa: BLE001 - cannot tell: do not judge
            return True
        if bool((~torch.isfinite(cond) | (cond > PIVOT_COND_LIMIT)).any()):
            return True
    return False


def _first_input(node, env):
    for name in node.inputs():
        if name in env:
            return env[name]
    return None


def _rounds_a_tie(node, eager_env: dict) -> bool:
    """Whether an integer-in, integer-out node computes a real value that sits on a .5 tie.

    Interpolation, pooling and mean-like kernels on integer tensors round a real result;
    eager rounds half up where decompositions may round half to even, so a value that is
    exactly on a tie may legitimately differ (e.g. ``upsample_bilinear2d`` on uint8). The
    float64 perturbation checks cannot see this when the graph has no float leaves, so
    re-run just this node with its integer inputs as float64 and look for ties.
    """
    import torch

    ins = [eager_env.get(n) for n in node.inputs()]
    outs = [eager_env.get(o) for o in node.outputs]
    if node.api == "module" or not ins or any(t is None for t in ins + outs):
        return False
    rounded = {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64}
    if not all(t.dtype in rounded for t in ins + outs):
        return False
    from fuzz.gen import interpret

    env = {n: eager_env[n].to(torch.float64) for n in node.inputs()}
    try:
        real = interpret.run_node(node, env, {}, device=str(ins[0].device))
    except Exception:
        return False
    for o in node.outputs:
        r = real.get(o)
        if r is None or not r.dtype.is_floating_point:
            continue
        frac = (r - torch.floor(r)).abs()
        if bool(((frac - 0.5).abs() < 1e-6).any()):
            return True
    return False


def sensitive_tensors(graph, eager_env: dict, ref_env: dict | None, perturbed_envs=()) -> dict:
    """Tensor name -> reason, for values of ``graph`` that need not match between runs.

    ``*_env`` map tensor names to values from whole-graph runs: eager in the model's own
    dtypes, float64, and float64 with slightly perturbed float leaves. Descendants of a
    sensitive value are sensitive too.
    """
    import torch

    reasons: dict[str, str] = {}
    for node in graph.nodes:
        short = _short(node.op)
        if short in NONDETERMINISTIC_OPS or short.endswith("dropout"):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} is nondeterministic")
            continue
        if short in INDEX_OPS:
            source = _first_input(node, ref_env or {}) if ref_env else None
            if source is None:
                source = _first_input(node, eager_env)
            tie = _slice_ties(node, source, short)
            if tie is None:
                tie = source is None or _has_ties(source)
            if tie:
                for o in node.outputs:
                    val = eager_env.get(o)
                    if short in TIE_VALUE_OPS or val is None or not is_float(val):
                        reasons.setdefault(o, f"{node.name} picks among ties")
        if short in PIVOTING_OPS and _ill_conditioned(*_square_operands(node, ref_env or {}, eager_env)):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} pivots on an ill-conditioned matrix")
        for o in node.outputs:
            e = eager_env.get(o)
            if e is None or o in reasons or is_float(e):
                continue
            # An integer/bool value: does it depend on float rounding?
            for env, why in [(ref_env, "differs in float64"), *[(p, "on a rounding boundary") for p in perturbed_envs]]:
                if env is None or o not in env:
                    continue
                other = env[o]
                if other.shape != e.shape or not torch.equal(other.to(e.dtype).cpu(), e.cpu()):
                    reasons[o] = f"{node.name} output {why}"
                    break
        if not any(o in reasons for o in node.outputs) and _rounds_a_tie(node, eager_env):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} rounds an exact .5 tie of its integer inputs")
    # propagate to everything computed from a sensitive value
    for node in graph.nodes:
        if any(i in reasons for i in node.inputs()):
            src = next(i for i in node.inputs() if i in reasons)
            for o in node.outputs:
                reasons.setdefault(o, f"computed from {src}")
    return reasons


# ---------------------------------------------------------------------------
# judging one run


@dataclass
class Reference:
    """What a compiled run is judged against: named values (outputs, then gradients)."""

    names: list[str]
    eager: list
    ref64: list | None = None
    skip: dict = field(default_factory=dict)     # name -> reason not judged


@dataclass
class Judgement:
    kind: Kind                                   # PASS | MISMATCH
    detail: str = ""                             # values | shape | dtype | nonfinite | count
    diff: dict | None = None
    checked: list = field(default_factory=list)  # names compared
    skipped: dict = field(default_factory=dict)


def judge(reference: Reference, actual: list, k: float = K) -> Judgement:
    """Compare a compiled run's values (same order as ``reference.names``) with the reference."""
    import torch

    skipped = dict(reference.skip)
    if len(actual) != len(reference.names):
        return Judgement(Kind.MISMATCH, "count", {"expected": len(reference.names), "got": len(actual)})
    checked = []
    worst = None
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
        checked.append(name)
        if a.dtype != e.dtype:
            return Judgement(Kind.MISMATCH, "dtype", {"where": name, "expected": _dtype_name(e), "got": _dtype_name(a)}, checked, skipped)
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
            atol, rtol, g = tolerance(_dtype_name(e), have64)
            limit = 0.5 * torch.finfo(e.dtype).max if e.dtype.is_floating_point else None
            bad = value_mismatch(ref, e_cpu, a_cpu, atol, rtol, g, k, limit)
            if bool(bad.any()):
                summary = _summarise(name, bad, ref, e_cpu, a_cpu, (atol, rtol, g), have64)
                if worst is None or summary["max_abs"] > worst["max_abs"]:
                    worst = summary
        else:
            bad = a_cpu != e_cpu
            if bool(bad.any()):
                summary = _summarise(name, bad, e_cpu, e_cpu, a_cpu, (0, 0, 0), False)
                if worst is None or summary["max_abs"] > worst["max_abs"]:
                    worst = summary
    if worst is not None:
        kind = "nonfinite" if worst.get("nonfinite") else "values"
        return Judgement(Kind.MISMATCH, kind, worst, checked, skipped)
    return Judgement(Kind.PASS, "", None, checked, skipped)


def _summarise(name, bad, ref, eager, actual, tol, have64) -> dict:
    import torch

    def real(t):
        t = torch.view_as_real(t) if t.is_complex() else t
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


def classify_exception(exc_type: str, message: str) -> Kind:
    """``oom`` for allocation failures, else ``crash``."""
    text = f"{exc_type} {message}".lower()
    return Kind.OOM if any(m in text for m in OOM_MARKERS) else Kind.CRASH
