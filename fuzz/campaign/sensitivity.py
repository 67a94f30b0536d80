"""Which values of a model may legitimately differ between eager and a compiled run.

``sensitive_tensors`` lists them for the forward pass, ``gradient_blockers`` for gradients;
a ``Reference`` (``fuzz.campaign.oracle``) does not judge them, nor anything computed from them:

- outputs of random or uninitialised-memory ops (``empty``, ``rand``, ``dropout``...);
- index outputs of ``argmax``/``max.dim``/``topk``/``sort``/``kthvalue``/... when a tie is
  among the candidates the op chose from (``slice_ties``; NNSmith's argmax false alarms), and
  of ops whose slices cannot be located when the input has a near-tie anywhere (not sorted
  ``unique`` of integers or bools: its values and counts follow from the input);
- integer/bool values derived from float rounding: ones whose float64 run differs from eager,
  or that change when float leaves are perturbed by a few ulps (``PERTURB``);
- equalities (``eq``, ``isin``...) of computed floats two of which are equal up to rounding
  (``equality_ties``: where a run rounds decides which are equal);
- conversions C++ leaves undefined (``fuzz.campaign.undefined_casts``): a special polynomial's
  degree that int64 cannot hold (``degree_unrepresentable``: the kernels convert it before
  branching on it), integer outputs converted from NaN, +-inf or out-of-range floats
  (``casts_unrepresentable``); no result is right; and a special polynomial at a NaN argument
  (``polynomial_of_nan``), where eager's kernel returns uninitialised memory;
- outputs of pivoting factorisations of an ill-conditioned matrix operand;
- outputs of ``put``/``index_put``/``scatter``/``index_copy`` that write one position twice
  (``OVERWRITE_OPS``), and of ops that do not check their indices when one is out of range
  (``UNCHECKED_OPS``: ``_unsafe_index``, ``_segment_reduce(unsafe=True)``, ``ctc_loss``'s labels);
- outputs of ``grid_sample`` at a NaN or infinite grid coordinate (``COORDINATE_OPS``);
- outputs of a call on complex numbers where an operand or output holds a NaN or infinite part
  (``complex_arith``: which part comes out NaN or infinite depends on the formula);
- outputs of reductions and contractions (sum, mean, pooling, matmul, conv, norms...) whose operand
  holds two or more finite values near the dtype's overflow (``_sums_extremes``): a partial sum
  overflows or not depending on the order of accumulation;
- outputs of means and variances (normalisations, ``var``, ``std``) of an operand holding an
  infinity (``moments``: a running mean gives NaN, a sum inf);
- outputs of ops that read the sign of a zero (``copysign``, division...: ``signed_zero``) when
  an operand the model computed holds an exact zero, whose sign evaluation order decides;
- for gradients, decompositions (SVD, QR, eigh...) of rank-deficient, ill-conditioned or repeated-
  singular-value matrices, ill-conditioned products of reflectors, ops that route a gradient to one
  of tied candidates (``sort``, ``msort``, ``max.dim``, pooling...); and (``oracle.nonfinite_downstream``)
  gradients that flow back through a NaN or infinite forward value.
"""

from __future__ import annotations

from fuzz.campaign.complex_arith import complex_nonfinite
from fuzz.campaign.ctc_labels import CTC_OPERANDS, CTC_OPS, labels_out_of_range
from fuzz.campaign.equality_ties import equality_of_near_ties
from fuzz.campaign.conditioning import (PIVOTING_OPS, fragile_matrix, ill_conditioned, non_unique_vectors,
                                        square_operands)
from fuzz.campaign.oracle import K, TOLERANCES, dtype_name_of, is_float
from fuzz.campaign.moments import infinite_moments
from fuzz.campaign.signed_zero import reads_sign_of_computed_zero
from fuzz.campaign.narrowing import narrows_past_range
from fuzz.campaign.folded_affine import folds_nonfinite_affine
from fuzz.campaign.running_stats import written_running_stats
from fuzz.campaign.scalar_rounding import scalar_rounding_decides
from fuzz.campaign.scaled_products import SCALED_PRODUCT_OPS, scaled_product_edge
from fuzz.campaign.undefined_casts import undefined_reasons
from fuzz.ir.opnames import short_name as short_op  # the spelling every op-name set here uses
from fuzz.ir.graph import called_node

# Relative noise used to find values that sit on a rounding boundary.
PERTURB = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-6, "float64": 1e-12}


def _op_names(names) -> frozenset:
    """Op names as ``short_op`` spells them (lower case, no leading or trailing underscores)."""
    return frozenset(n.lower().strip("_") for n in names)


NONDETERMINISTIC_OPS = _op_names({
    "empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided", "empty_permuted",
    "rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "randperm",
    "bernoulli", "multinomial", "normal", "uniform", "exponential", "geometric", "cauchy",
    "log_normal", "poisson", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "feature_dropout", "native_dropout", "rrelu", "rrelu_with_noise",
    "fractional_max_pool2d", "fractional_max_pool3d", "fractional_max_pool2d_with_indices",
    "fractional_max_pool3d_with_indices", "gumbel_softmax", "set_", "resize_", "resize_as_",
})
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
    atol, rtol, _ = TOLERANCES.get(dtype_name_of(t), TOLERANCES["float32"])
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


def _exact_unique(node, short: str, eager_env: dict) -> bool:
    """``unique`` sorted (its default) or ``unique_consecutive`` of an integer or bool tensor: its
    values, inverse and counts follow from the input alone (no choice among equal elements)."""
    if short not in ("unique", "unique_consecutive") or (short == "unique" and _arg(node, 1, "sorted", True) is False):
        return False
    source = _first_input(node, eager_env)
    return source is not None and not is_float(source)


def slice_ties(node, source, short: str) -> bool | None:
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
    atol, rtol, _ = TOLERANCES.get(dtype_name_of(source), TOLERANCES["float32"])
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
    short = short_op(node.op)
    return short in INDEX_OPS and short not in INDEX_ONLY_OPS


# Ops whose *gradients* are ill-defined or explode on rank-deficient inputs or on repeated
# singular values / eigenvalues (the SVD and eigh backward divide by s_i - s_j, QR's by R's
# diagonal): forward values may be fine while two correct gradients differ wildly.
GRADIENT_FRAGILE_OPS = {
    "svd", "linalg_svd", "svdvals", "linalg_svdvals", "qr", "linalg_qr", "eigh", "linalg_eigh", "eigvalsh",
    "linalg_eigvalsh", "eig", "linalg_eig", "eigvals", "linalg_eigvals", "pinv", "linalg_pinv", "pinverse",
    "lstsq", "linalg_lstsq", "nuclear_norm", "matrix_rank", "linalg_matrix_rank", "cholesky", "linalg_cholesky",
    "linalg_cholesky_ex", "cholesky_inverse", "cholesky_solve", "lu", "linalg_lu", "linalg_lu_factor",
    "linalg_lu_factor_ex", "det", "linalg_det", "logdet", "slogdet", "linalg_slogdet", "inverse", "linalg_inv",
    "linalg_inv_ex", "linalg_solve", "linalg_solve_ex", "solve",
}
# Products of Householder reflectors, judged by their output: with another tau than geqrf's the product
# is far from unitary and its gradient cancels digits in eager too (cond 2.7e5, thirteenth session).
OUTPUT_FRAGILE_OPS = {"householder_product", "linalg_householder_product", "orgqr", "ormqr"}
def gradient_blockers(graph, *envs) -> dict:
    """Tensor name -> reason, for values whose gradients may legitimately differ: outputs of
    decompositions (``GRADIENT_FRAGILE_OPS``) and of ops that route a gradient to one of tied
    candidates (``sort``, ``msort``, ``max.dim``...: ``slice_ties``); ``envs`` are searched in order
    for each operand."""
    reasons = {}
    for node in map(called_node, graph.nodes):
        short = short_op(node.op)
        if short in INDEX_OPS and short not in INDEX_ONLY_OPS:
            # sort/msort/max.dim/topk/pooling...: the gradient goes to the position the op chose,
            # so a tie among the candidates sends it to either one (the values are right either way)
            source = next((_first_input(node, env) for env in envs if _first_input(node, env) is not None), None)
            tie = slice_ties(node, source, short)
            if tie or (tie is None and (source is None or _has_ties(source))):
                for o in node.outputs:
                    reasons.setdefault(o, f"{node.name} routes its gradient through a tie")
            continue
        if short not in GRADIENT_FRAGILE_OPS and short not in OUTPUT_FRAGILE_OPS:
            continue
        if short in OUTPUT_FRAGILE_OPS:
            q = next((env[node.outputs[0]] for env in envs if env.get(node.outputs[0]) is not None), None)
            if q is not None and q.dim() >= 2 and q.numel() > 0 and ill_conditioned(q):
                reasons.update({o: f"{node.name}'s gradient on an ill-conditioned product of reflectors" for o in node.outputs})
            continue
        for name in dict.fromkeys(node.inputs()):
            t = next((env[name] for env in envs if env.get(name) is not None), None)
            if t is not None and t.dim() >= 2 and t.numel() > 0 and fragile_matrix(t):
                for o in node.outputs:
                    reasons[o] = (f"{node.name}'s gradient on a rank-deficient, ill-conditioned or "
                                  "repeated-singular-value matrix")
                break
    return reasons


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


# Integer/bool results computed exactly from their float operands (conversions, comparisons).
EXACT_OPS = {"int", "long", "short", "char", "byte", "bool", "to", "type", "type_as", "to_copy", "eq", "ne", "lt",
             "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal", "equal", "bucketize",
             "searchsorted", "isin", "frexp", "signbit", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "isreal"}


# Ops that overwrite one position per index: with a repeated index (and no accumulation) which
# write wins is unspecified (torch's docs say so for put_, index_put_, scatter_, index_copy_).
OVERWRITE_OPS = _op_names({"put", "put_", "index_put", "index_put_", "_index_put_impl_", "_unsafe_index_put", "scatter",
                 "scatter_", "index_copy", "index_copy_", "max_unpool1d", "max_unpool2d", "max_unpool3d",
                 "maxunpool1d", "maxunpool2d", "maxunpool3d"})
# Ops that do not check their indices or lengths: out of range they read any memory (in eager too)
UNCHECKED_OPS = _op_names({"_unsafe_index", "_unsafe_masked_index", "_unsafe_index_put",
                           "_unsafe_masked_index_put_accumulate", "_segment_reduce", "segment_reduce"}) | CTC_OPS


def _call(node, env):
    """The node's decoded (args, kwargs) with the tensors of ``env``, or None."""
    from fuzz.gen.interpret import call_args

    try:
        return call_args(node, env)
    except Exception:  # noqa: BLE001 - a value missing from env: cannot tell
        return None


def _pick(args, kwargs, position: int, name: str, default=None):
    return kwargs[name] if name in kwargs else (args[position] if len(args) > position else default)


def _repeats(idx, dim: int | None = None) -> bool:
    """Whether an integer index tensor repeats a value (along ``dim`` within one slice, when given)."""
    import torch

    if not isinstance(idx, torch.Tensor) or idx.numel() < 2:
        return False
    if dim is None:
        return idx.reshape(-1).unique().numel() < idx.numel()
    d = dim % idx.dim() if idx.dim() else 0
    if idx.dim() == 0 or idx.shape[d] < 2:
        return False
    srt, _ = idx.sort(dim=d)
    n = srt.shape[d]
    return bool((srt.narrow(d, 1, n - 1) == srt.narrow(d, 0, n - 1)).any())


def _writes_twice(node, short: str, env: dict) -> bool:
    import torch

    call = _call(node, env)
    if call is None:
        return False
    args, kwargs = call
    if "unpool" in short:  # indices (arg 1) address positions within each plane of the output
        idx, k = (args[1] if len(args) > 1 else kwargs.get("indices")), int(short[-2])
        return isinstance(idx, torch.Tensor) and _repeats(idx.flatten(-k) if idx.dim() > k else idx, -1)
    if short.startswith("put"):
        return not _pick(args, kwargs, 3, "accumulate", False) and _repeats(_pick(args, kwargs, 1, "index"))
    if "index_put" in short:
        indices = _pick(args, kwargs, 1, "indices", ()) or ()
        return not _pick(args, kwargs, 3, "accumulate", False) and any(_repeats(i) for i in indices)
    if short.startswith("scatter"):
        src = _pick(args, kwargs, 3, "src", None)
        if _pick(args, kwargs, 4, "reduce", None) is not None or not isinstance(src, torch.Tensor):
            return False  # a reduction accumulates; a scalar writes the same value every time
        return _repeats(_pick(args, kwargs, 2, "index"), int(_pick(args, kwargs, 1, "dim", 0)))
    return _repeats(_pick(args, kwargs, 2, "index"))  # index_copy


def _out_of_range(node, short: str, env: dict, unknown: bool = True) -> bool:
    import torch

    call = _call(node, env)
    if call is None:
        return unknown  # cannot tell: an unchecked read is not judged (the default)
    args, kwargs = call
    x = args[0] if args else None
    if short in CTC_OPS:
        return labels_out_of_range(*(_pick(args, kwargs, i, n) for i, n in enumerate(CTC_OPERANDS)))
    if "segment_reduce" in short:
        if not _pick(args, kwargs, 6, "unsafe", False):
            return False
        lengths = _pick(args, kwargs, 2, "lengths", None)
        axis = int(_pick(args, kwargs, 5, "axis", 0))
        if not isinstance(lengths, torch.Tensor) or not isinstance(x, torch.Tensor):
            return True
        return bool((lengths < 0).any()) or bool((lengths.sum(-1) != x.shape[axis]).any())
    indices = _pick(args, kwargs, 2 if "masked" in short else 1, "indices", ()) or ()
    for k, idx in enumerate(indices):
        if isinstance(idx, torch.Tensor) and idx.numel() and isinstance(x, torch.Tensor) and k < x.dim():
            size = x.shape[k]
            if bool((idx < -size).any()) or bool((idx >= size).any()):
                return True
    return False


def undefined_indexing(graph, eager_env: dict) -> str | None:
    """The first call that does not check its indices (``UNCHECKED_OPS``) given one out of range on
    these values, else None: it reads or writes outside its tensors in eager and compiled code, so
    neither its outputs nor a crash or signal say anything (an out-of-range accumulate into a
    zero-size tensor killed the inductor worker with SIGSEGV while eager happened to survive)."""
    for node in map(called_node, graph.nodes):
        short = short_op(node.op)
        if short in UNCHECKED_OPS and _out_of_range(node, short, eager_env, unknown=False):
            return node.name
    return None


# Reductions and contractions: an intermediate sum of values near the dtype's overflow (the
# edge policy's +-max) is finite or infinite depending on the order of accumulation.
ACCUMULATING_PREFIXES = (
    "sum", "nansum", "mean", "nanmean", "avg_pool", "avgpool", "adaptive_avg_pool", "adaptiveavgpool", "conv",
    "linear", "bilinear", "matmul", "mm", "bmm", "addm", "addbmm", "baddbmm", "dot", "vdot", "inner", "mv",
    "einsum", "tensordot", "cumsum", "cumprod", "prod", "trace", "var", "std", "norm", "linalg_vector_norm",
    "linalg_norm", "linalg_matrix_norm", "frobenius_norm", "layer_norm", "layernorm", "group_norm", "groupnorm",
    "batch_norm", "batchnorm", "instance_norm", "instancenorm", "native_layer_norm", "native_group_norm",
    "native_batch_norm", "embedding_bag", "cdist", "cosine_similarity", "upsample", "upsampling", "interpolate",
)
EXTREME_FRACTION = 1 / 16  # of the dtype's largest finite value


RESAMPLING_CALLS = {"interpolate": 3, "upsample": 3}  # functional name -> position of ``mode`` (nn.Upsample: 2)


def _nearest_resampling(node, short: str, env: dict) -> bool:
    """An upsample/interpolate that copies its nearest input value: it sums nothing, so values
    near overflow are no reason to excuse it (its mode is in its name, its call or its module)."""
    if "nearest" in short:
        return True
    if short not in RESAMPLING_CALLS:
        return False  # aten's upsample_bilinear2d, upsample_bicubic2d...: named, and interpolating
    if node.api == "module":
        init = node.init or {}
        mode = _pick(init.get("args", []), init.get("kwargs", {}), 2, "mode", "nearest")
    else:
        call = _call(node, env)
        if call is None:
            return False  # cannot tell: keep the excuse
        mode = _pick(call[0], call[1], RESAMPLING_CALLS[short], "mode", "nearest")
    return isinstance(mode, str) and mode.startswith("nearest")


def _sums_extremes(node, short: str, eager_env: dict) -> bool:
    """An accumulating op whose float operand holds two or more finite values near overflow."""
    import torch

    if not (short.startswith(ACCUMULATING_PREFIXES) or short.endswith("loss")):
        return False
    if short.startswith(("upsampl", "interpolate")) and _nearest_resampling(node, short, eager_env):
        return False
    for name in dict.fromkeys(node.inputs()):
        t = eager_env.get(name)
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.numel() < 2:
            continue
        big = torch.finfo(t.dtype).max * EXTREME_FRACTION
        if int((t.isfinite() & (t.abs() >= big)).sum()) >= 2:
            return True
    return False


# Ops that read a float operand as sampling coordinates (the grid, second operand): where a
# coordinate is NaN or +-inf the sampled position does not exist; eager's kernel gives NaN, a
# decomposition clamps it out of bounds and gives the padding value. Neither is specified. Nor is
# the position of a finite coordinate so large that, unnormalised to the input's size, one ulp of it
# spans a pixel or more (|g| (size + 1) >= 1 / eps of its dtype): the dtype does not say where in the
# image it lands, and unnormalising it may overflow (the eighth session's grid_sample at -3.4e38
# with reflection: eager's kernel picked pixel 0 from the resulting NaN, inductor gave -0; at -1e10
# eager, inductor and float64 give three different pixels).
COORDINATE_OPS = _op_names({"grid_sample", "grid_sampler", "grid_sampler_2d", "grid_sampler_3d", "_grid_sampler_2d_cpu_fallback"})


def _nonfinite_coordinates(node, eager_env: dict) -> bool:
    """A grid coordinate that is NaN or +-inf, or so large that, unnormalised to the input's size,
    one ulp of it spans a pixel."""
    names = list(dict.fromkeys(node.inputs()))
    grid = eager_env.get(names[1]) if len(names) > 1 else None
    if grid is None or not grid.is_floating_point():
        return False
    import torch

    if not bool(torch.isfinite(grid).all()):
        return True
    x = eager_env.get(names[0])
    size = max([int(d) for d in x.shape[2:]] + [1]) if isinstance(x, torch.Tensor) else 1
    return bool((grid.abs() * (size + 1) >= 1 / torch.finfo(grid.dtype).eps).any())


def sensitive_tensors(graph, eager_env: dict, ref_env: dict | None, perturbed_envs=()) -> dict:
    """Tensor name -> reason, for values of ``graph`` that need not match between runs.

    ``*_env`` map tensor names to values from whole-graph runs: eager in the model's own
    dtypes, float64, and float64 with slightly perturbed float leaves. Descendants of a
    sensitive value are sensitive too.
    """
    import torch

    reasons: dict[str, str] = {}
    leaves = set(graph.inputs) | set(graph.params)
    for node in map(called_node, graph.nodes):  # a checkpointed call is judged as the call it makes
        short = short_op(node.op)
        if short in NONDETERMINISTIC_OPS or short.endswith("dropout"):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} is nondeterministic")
            continue
        if short in INDEX_OPS and not _exact_unique(node, short, eager_env):
            source = _first_input(node, ref_env or {}) if ref_env else None
            if source is None:
                source = _first_input(node, eager_env)
            tie = slice_ties(node, source, short)
            if tie is None:
                tie = source is None or _has_ties(source)
            if tie:
                for o in node.outputs:
                    val = eager_env.get(o)
                    if short in TIE_VALUE_OPS or val is None or not is_float(val):
                        reasons.setdefault(o, f"{node.name} picks among ties")
        for o, why in undefined_reasons(node, eager_env, short in INDEX_OPS).items():
            reasons.setdefault(o, why)
        if short in OVERWRITE_OPS and _writes_twice(node, short, eager_env):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} writes one position twice (which write wins is unspecified)")
        if short in UNCHECKED_OPS and _out_of_range(node, short, eager_env):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} does not check its indices and one is out of range "
                                      "(it reads outside its input)")
        if _sums_extremes(node, short, eager_env):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} accumulates values near the dtype's overflow (whether a "
                                      "partial sum overflows depends on the order of accumulation)")
        if node.outputs and narrows_past_range(node, eager_env, getattr(graph.tensors.get(node.outputs[0]), "dtype", None)):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} casts a value beyond the dtype's range (inf in eager; "
                                      "inductor may skip the round trip)")
        if folds_nonfinite_affine(node, eager_env):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} normalises with a non-finite weight, bias or statistic (whether "
                                      "the affine is folded first decides NaN against inf)")
        if short in SCALED_PRODUCT_OPS and scaled_product_edge(node, eager_env):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} adds an infinite or near-overflow product (whether alpha "
                                      "applies first, or the add is fused, is unspecified)")
        if complex_nonfinite(node, eager_env):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} does complex arithmetic on a NaN or infinite part (which "
                                      "part comes out NaN or infinite depends on the formula)")
        if short in COORDINATE_OPS and _nonfinite_coordinates(node, eager_env):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} samples at a NaN or infinite coordinate")
        if reads_sign_of_computed_zero(node, short, eager_env, leaves):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} reads the sign of a computed zero")
        if infinite_moments(node, short, eager_env):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} takes the mean and variance of an infinite value (a running "
                                      "mean gives NaN, a sum inf)")
        for o in non_unique_vectors(node, short, ref_env or {}, eager_env):
            reasons.setdefault(o, f"{node.name}'s vectors of a matrix with zero or repeated singular values (not unique)")
        if scalar_rounding_decides(node, short, eager_env):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} divides a low-precision tensor by a Python number (rounded to "
                                      "the tensor's dtype by eager or not decides a jump)")
        if equality_of_near_ties(node, short, ref_env, eager_env, leaves, PERTURB):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} tests computed floats equal up to rounding for equality (where "
                                      "a run rounds decides which are equal)")
        if short in PIVOTING_OPS and ill_conditioned(*square_operands(node, ref_env or {}, eager_env)):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} pivots on an ill-conditioned matrix")
        for o in node.outputs:
            e = eager_env.get(o)
            if e is None or o in reasons or is_float(e):
                continue
            # An integer/bool value: does it depend on float rounding? (Not when an exact conversion
            # or comparison reads the model's own inputs: the compiled run gets the very same floats,
            # so a value on a boundary, 2.9999998.int() or x.5 == y, is no excuse there.)
            probes = [] if short in EXACT_OPS and all(i in leaves for i in node.inputs()) else perturbed_envs
            for env, why in [(ref_env, "differs in float64"), *[(p, "on a rounding boundary") for p in probes]]:
                if env is None or o not in env:
                    continue
                other = env[o]
                if other.shape != e.shape or not torch.equal(other.to(e.dtype).cpu(), e.cpu()):
                    reasons[o] = f"{node.name} output {why}"
                    break
        if not any(o in reasons for o in node.outputs) and _rounds_a_tie(node, eager_env):
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} rounds an exact .5 tie of its integer inputs")
    # propagate to everything computed from a sensitive value (running statistics a call updates
    # in place are its outputs too: fuzz.campaign.running_stats)
    for node in graph.nodes:
        if any(i in reasons for i in node.inputs()):
            src = next(i for i in node.inputs() if i in reasons)
            for o in node.outputs:
                reasons.setdefault(o, f"computed from {src}")
        if any(o in reasons for o in node.outputs):
            for stat in written_running_stats(node):
                reasons.setdefault(stat, f"{node.name} updates it in place from values not judged")
    return reasons
