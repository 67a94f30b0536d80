"""Which rules the generator leaves out: operators unfit for differential testing.

Most filters are automatic (in-place and ``out=`` variants, calls that write an argument or
update running statistics, modules built from a tensor); ``DENY_WORDS`` and ``DENY_SUBSTRINGS``
are the short list of what they do not catch (random, uninitialised, data-dependent-shape,
aliasing and I/O operators, and a few that crash natively on shapes the rules allow).
"""

from __future__ import annotations

from fuzz.ir.opnames import last_component
from fuzz.ir.rule import Rule

# Operators unfit for differential testing that the automatic filters below do not catch.
# Matched as whole words against the operator's last name component.
DENY_WORDS = (
    # random / nondeterministic
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "native_dropout",
    "rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "randperm", "bernoulli",
    "multinomial", "normal", "uniform", "poisson", "exponential", "cauchy", "geometric", "log_normal",
    "rrelu", "rrelu_with_noise", "gumbel_softmax", "fractional_max_pool2d", "fractional_max_pool3d",
    "fractionalmaxpool2d", "fractionalmaxpool3d", "rrelu_with_noise_functional",
    # uninitialised memory
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "empty_permuted", "resize", "resize_as",
    # data-dependent output shapes (as rules; the forms' datadep rewrite places a few itself, fuzz.gen.datadep)
    "nonzero", "nonzero_static", "argwhere", "unique", "unique_consecutive", "unique_dim", "_unique", "_unique2",
    "masked_select", "bincount", "histogram", "histogramdd", "repeat_interleave",
    # aliasing into storage we do not control
    "as_strided", "as_strided_scatter", "as_strided_copy", "set", "storage_offset",
    # scalars out, global state, I/O
    "item", "_local_scalar_dense", "tolist", "is_complex", "numpy", "manual_seed", "seed", "save", "load", "from_file",
    "set_default_dtype", "_assert_async", "_assert_tensor_metadata", "_print", "print",
    # native crashes on shapes or values the rules allow (torch 2.13; they kill the generating
    # process): negative LDL pivots corrupt the heap, so do lu_unpack's pivots when their batch
    # shape disagrees with LU's; the private CPU flash-attention kernel divides by zero (SIGFPE)
    # when query/key batch or head counts disagree
    "linalg_ldl_solve", "ldl_solve", "lu_unpack", "scaled_dot_product_flash_attention_for_cpu",
    # internal tracing ops: eager's lift_fresh returns its input, so a gradient flows through it,
    # while AOT autograd takes it for a fresh constant (the datadep campaign's linalg_qr
    # "gradient mismatch" on both backends, 2026-12-05); no user program calls them
    "lift", "lift_fresh", "lift_fresh_copy",
    # sparse layouts' index tensors (a "_indices" substring once stood for these and also dropped
    # max_pool2d/3d_with_indices, tril_indices and triu_indices by accident)
    "indices", "crow_indices", "col_indices", "ccol_indices", "row_indices", "coalesced_indices",
)
# Operators the old "_indices" substring denied by accident. ``RuleSet`` holds them apart
# (``RuleSet.held_back``): model-shaped and program-form models use them (``fuzz.gen.blocks``), while
# the random form leaves them out so that a ``LEGACY`` model stays byte-identical to before.
HELD_BACK_FROM_RANDOM = ("max_pool2d_with_indices", "max_pool3d_with_indices", "max_pool2d_with_indices_backward",
                         "max_pool3d_with_indices_backward", "tril_indices", "triu_indices",
                         # it runs the CPU flash kernel that dies of SIGFPE on some shapes (the
                         # tracer's shape mutants of it killed their worker): only the attention
                         # block calls it, on q = k = v = the block's input
                         "scaled_dot_product_attention")
# Substrings that exclude an operator anywhere in its name. ("complex" was one: operators that make
# complex tensors, view_as_complex and complex, now stay, and the dtype filter keeps them out of
# every model but those of the complex64 theme: fuzz.gen.complex_boundary.)
DENY_SUBSTRINGS = ("torch.testing", "torch.onnx", "torch.jit", "torch.autograd", "torch.utils", "torch.export", "torch._refs", "torch._prims", "_decomp", "torch.torch.", "sparse", "quantiz", "mkldnn", "nested", "_foreach", "torch.nn.init.", "_fused_", "fbgemm",
                   "_cudnn", "miopen", "cuda", "_mps", "to_padded", "qscheme", "_dimI", "_values",
                   "coalesce", "_nnz", "fake_quant", "record_stream", "_debug")


def _mutates_args(rule: Rule) -> bool:
    """An aten overload that writes to one of its arguments (in-place or out=)."""
    if rule.api != "aten":
        return False
    try:
        from fuzz.ir.record import resolve_op

        fn = resolve_op(rule.op, "aten", rule.overload)
        return any(a.alias_info is not None and a.alias_info.is_write for a in fn._schema.arguments)
    except Exception:
        return True


def _template_has_tensor_in_init(template: dict) -> bool:
    return "init" in template and '"X"' in repr(template["init"]).replace("'", '"')


def _mutating_training_call(rule: Rule) -> bool:
    """Functional norms called with training=True / use_input_stats=True update running stats in place."""
    name = last_component(rule.op).lower()
    if "batch_norm" not in name and "instance_norm" not in name:
        return False
    kw = rule.template.get("kwargs", {})
    if kw.get("training") is True or kw.get("use_input_stats") is True:
        return True
    return True in [a for a in rule.template.get("args", []) if isinstance(a, bool)] and rule.api != "module"


def deny_reason(rule: Rule) -> str | None:
    """Why a rule is unfit for generation (None when fit). The deny-list is short; most filters are automatic."""
    op = rule.op
    last = last_component(op)
    if rule.overload and ("out" in rule.overload.split("_") or rule.overload.endswith("out")):
        return "out= variant"
    if last.endswith("_") and not last.endswith("__"):
        return "in-place"
    if "out" in rule.template.get("kwargs", {}):
        return "out= variant"
    if last.lower() in DENY_WORDS or last.lower().lstrip("_") in DENY_WORDS:
        return "deny-list"
    lowered = op.lower()
    if any(s in lowered for s in DENY_SUBSTRINGS):
        return "deny-list"
    if rule.api == "module" and _template_has_tensor_in_init(rule.template):
        return "tensor in constructor"
    if _mutating_training_call(rule):
        return "updates running stats"
    if _mutates_args(rule):
        return "writes an argument"
    return None


def without_dropout(rule: Rule) -> Rule | None:
    """``rule`` with only the float values and recorded examples whose ``dropout_p`` is 0 (a positive
    dropout is random, a negative one a mutant eager happened to accept); None when it has none."""
    import dataclasses

    slot = rule.template.get("kwargs", {}).get("dropout_p")
    if not (isinstance(slot, dict) and "F" in slot):
        return rule
    m = slot["F"]
    floats = [f for f in rule.floats if f[m] == 0.0]
    examples = [e for e in rule.examples if len(e.get("floats") or []) > m and e["floats"][m] == 0.0]
    return dataclasses.replace(rule, floats=floats, examples=examples) if floats and examples else None


# Integer enum arguments that eager casts without a range check: a recorded mutant such as
# ``grid_sampler_3d(..., interpolation_mode=-1)`` runs, but falls through the kernel's switch and
# returns uninitialised memory (its output changed with the process's allocation history, so the
# guard's rerun caught it in some processes and not others). Positional template slots -> the
# valid values.
UNCHECKED_ENUMS = {name: {2: range(3), 3: range(3)}
                   for name in ("grid_sampler", "grid_sampler_2d", "grid_sampler_3d", "_grid_sampler_2d_cpu_fallback")}


def without_unchecked_enums(rule: Rule) -> Rule | None:
    """``rule`` with only the recorded calls and integer ranges whose unchecked enum arguments
    (``UNCHECKED_ENUMS``) hold valid values; None when no recorded call is left."""
    import dataclasses

    valid_at = UNCHECKED_ENUMS.get(last_component(rule.op).lower())
    if not valid_at:
        return rule
    args = rule.template.get("args", [])
    slots = {args[i]["A"]: ok for i, ok in valid_at.items()
             if i < len(args) and isinstance(args[i], dict) and "A" in args[i]}
    if not slots:
        return rule
    examples = [e for e in rule.examples
                if all(len(e.get("ints") or []) > k and e["ints"][k] in ok for k, ok in slots.items())]
    if not examples:
        return None
    stats = dict(rule.stats) if isinstance(rule.stats, dict) else {}
    ranges = dict(stats.get("int_ranges") or {})
    for k, ok in slots.items():
        lo, hi = ranges.get(f"a{k}", [min(ok), max(ok)])
        ranges[f"a{k}"] = [max(int(lo), min(ok)), min(int(hi), max(ok))]
    stats["int_ranges"] = ranges
    return dataclasses.replace(rule, examples=examples, stats=stats)
