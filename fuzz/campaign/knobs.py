"""Compiler settings a guided campaign varies: named knobs over inductor's and dynamo's config.

A *knob* is a name and the config values it sets (``KNOBS``), chosen because each one changes
which code path a CPU compile takes: the C++ wrapper, freezing, fusion switches, split
reductions, the pattern matcher, vector widths and tails, the OpenMP chunk size, GEMM templates
(max-autotune)... Knobs that may change results legitimately (unsafe math, floating-point
contraction) are left out: a difference they make is not a bug.

A test runs under the knobs of its job (``applied``: set, then restored); its verdict and case
record them as ``{name: {setting: value}}``; ``repro.py`` sets them with ``set_knobs`` (copied
into the script verbatim) before compiling, and leaves out those named in the environment
variable ``ASSAY_REPRO_WITHOUT`` (comma-separated), which is how triage finds which knobs a case
needs (``fuzz.triage.knob_ablation``).

A model may need settings of its own to compile as written (``model_knobs``: dynamo's capture
flags for a model with data-dependent calls, recorded in its ``graph.meta``): the session sets them
around that model's compiles only, and its ``repro.py`` always sets them.
"""

from __future__ import annotations

import contextlib
import random

from fuzz.errors import AssayError

# the opt-in pattern passes of torch._inductor.fx_passes (pre_grad.PRE_GRAD_PATTERNS and
# group_batch_fusion.PRE_GRAD_FUSIONS; post_grad.POST_GRAD_PATTERNS and POST_GRAD_FUSIONS, less
# group_linear, which needs fbgemm, and the padding and quantisation entries other knobs own)
OPTIMUS_PRE_GRAD = (
    "normalization_pass", "einsum_to_pointwise_pass", "merge_getitem_cat_pass", "merge_splits_pass",
    "merge_stack_tahn_unbind_pass", "move_reshape_out_of_split_stack_pass", "mutate_cat_pass",
    "remove_split_with_size_one_pass", "split_cat_pass", "split_cat_to_slices_pass",
    "split_stack_to_cats_pass", "unbind_cat_to_view_pass", "unbind_stack_pass",
    "unbind_stack_to_slices_pass", "batch_clamp", "batch_detach", "batch_dropout", "batch_layernorm",
    "batch_linear", "batch_linear_lhs", "batch_nan_to_num", "batch_relu", "batch_sigmoid", "batch_tanh")
OPTIMUS_POST_GRAD = (
    "normalization_aten_pass", "move_view_after_cat_aten_pass", "select_cat_aten_pass",
    "split_cat_aten_pass", "unbind_stack_aten_pass", "batch_aten_add", "batch_aten_div",
    "batch_aten_mul", "batch_aten_relu", "batch_aten_sigmoid", "batch_aten_sub", "batch_aten_tanh",
    "batch_linear_post_grad")

# name -> {setting: value}; a setting is "inductor.<attr>" or "dynamo.<attr>" (dots into sub-configs),
# or "assay.<global>" for a compile argument (COMPILE_DYNAMIC below)
KNOBS: dict[str, dict] = {
    "cpp_wrapper": {"inductor.cpp_wrapper": True},
    "freezing": {"inductor.freezing": True},
    "no_epilogue_fusion": {"inductor.epilogue_fusion": False},
    "no_split_reductions": {"inductor.split_reductions": False},
    "no_pattern_matcher": {"inductor.pattern_matcher": False},
    "fallback_random": {"inductor.fallback_random": True},
    "no_size_asserts": {"inductor.size_asserts": False},
    "aggressive_fusion": {"inductor.aggressive_fusion": True},
    "no_fusion": {"inductor.max_fusion_size": 1},
    "no_loop_ordering": {"inductor.loop_ordering_after_fusion": False},
    "no_constant_folding": {"inductor.joint_graph_constant_folding": False},
    "no_online_softmax": {"inductor.online_softmax": False},
    "emulate_precision_casts": {"inductor.emulate_precision_casts": True},
    "max_autotune": {"inductor.max_autotune": True, "inductor.max_autotune_gemm_backends": "CPP,ATEN"},
    "scalar": {"inductor.cpp.simdlen": 1},            # no vector ISA: scalar loops only
    "avx2": {"inductor.cpp.simdlen": 256},            # 256-bit vectors where the CPU has wider ones
    "no_tail_vec": {"inductor.cpp.enable_loop_tail_vec": False},
    "no_tiling_heuristics": {"inductor.cpp.enable_tiling_heuristics": False},
    "small_chunks": {"inductor.cpp.min_chunk_size": 1},  # OpenMP splits even small loops
    "dynamic_threads": {"inductor.cpp.dynamic_threads": True},
    "capture_scalar_outputs": {"dynamo.capture_scalar_outputs": True},
    # opt-in FX rewrites off by default, each a code path of its own: the pre-grad split/cat/stack/
    # unbind normalisations and the batch fusions of parallel linears, norms and activations
    # ("Optimus"), and their post-grad counterparts; a pass name a torch lacks would raise a KeyError
    # in its compile, so set_knobs leaves out the names the installed torch does not know (and
    # tests/campaign/test_feedback.py checks that the pinned torch knows them all)
    "optimus_pre_grad": {"inductor.pre_grad_fusion_options": {n: {} for n in OPTIMUS_PRE_GRAD}},
    "optimus_post_grad": {"inductor.post_grad_fusion_options": {n: {} for n in OPTIMUS_POST_GRAD}},
    "decompose_mm": {"inductor.decompose_mem_bound_mm": True},  # small mm/bmm as pointwise + sum
    "permute_fusion": {"inductor.permute_fusion": True},         # permute/transpose folded into matmuls
    "conv_bn_eval_fold": {"inductor.efficient_conv_bn_eval_fx_passes": True},
    "memory_planning": {"inductor.memory_planning": True},       # buffers allocated from pools
    # stride padding of intermediates (on by default on GPU only) and padded mm shapes
    "cpu_padding": {"inductor.disable_padding_cpu": False, "inductor.force_shape_pad": True},
    # torch.compile's default dynamic=None in the dynamic mode: a static first compile, then, at the
    # second call's sizes, a recompile with automatic dynamic shapes (only the changed dims symbolic)
    "automatic_dynamic": {"assay.COMPILE_DYNAMIC": None},
    # bwd and train tests: the compiled side's backward runs under compiled autograd (dynamo captures
    # the autograd graph at backward time and compiles it with the test's backend), not as the
    # AOTAutograd backward alone; a knob of its own because it is a separate capture stack
    "compiled_autograd": {"assay.COMPILED_AUTOGRAD": True},
    # fwd and dynamic tests: the compiled side compiles and runs under torch.inference_mode(), its
    # inputs made there (inference tensors), as a user's serving loop does; the eager reference
    # stays under no_grad. Dynamo, AOTAutograd and functionalization treat inference tensors apart
    "inference_mode": {"assay.INFERENCE_MODE": True},
    # two opt-in rewrites new in torch 2.13's inductor, off by default: AutoChunker splits a training
    # graph's large intermediates (a linear before a loss) into chunks along the batch, here with its
    # size thresholds lowered so that it fires on the generator's sizes; the partitioned scatter
    # spreads an accumulating index_put (4096+ indices) over several buffers and sums them
    "auto_chunker": {"inductor.auto_chunker.enable": True, "inductor.auto_chunker.output_size_threshold": 256,
                     "inductor.auto_chunker.amplify_ratio_threshold": 1},
    "partitioned_scatter": {"inductor.partitioned_scatter_enabled": True},
    # torch.compile backends: the tested callable is served from torch's on-disk caches (inductor's
    # FX graph cache, the AOTAutograd cache), as a restarted process gets it (``served_from_caches``)
    "warm_cache": {"assay.WARM_CACHE": True},
}

# The ``dynamic`` argument of the dynamic mode's compile (``Session.run_test``, repro.py): True, every
# size symbolic from the first compile; None under the ``automatic_dynamic`` knob, what a user who
# calls ``torch.compile(model)`` gets when sizes change. An ``assay.`` setting of a knob sets it.
COMPILE_DYNAMIC = True


def dynamic_argument(mode: str):
    """What a test of ``mode`` passes as ``compile_model``'s ``dynamic``: ``COMPILE_DYNAMIC`` in the
    dynamic mode (as the knobs in force set it), else False."""
    return COMPILE_DYNAMIC if mode == "dynamic" else False

# Whether the compiled side's backward (bwd and train modes) runs under compiled autograd
# (``compiled_backward``); the ``compiled_autograd`` knob sets it.
COMPILED_AUTOGRAD = False


def compiled_backward(backend):
    """The context the compiled side's backward runs in: compiled autograd, compiling the captured
    autograd graph with ``torch.compile(backend=backend)``, when ``COMPILED_AUTOGRAD`` is set and
    ``backend`` is one of torch.compile's (export and AOTInductor programs have no such backward;
    None: the eager side); else nothing. Plain torch: copied into bwd and train repro.py scripts."""
    import contextlib
    import functools

    import torch

    if not COMPILED_AUTOGRAD or backend not in ("inductor", "aot_eager", "aot_eager_decomp_partition", "eager"):
        return contextlib.nullcontext()
    from torch._dynamo import compiled_autograd

    return compiled_autograd._enable(functools.partial(torch.compile, backend=backend))

# Whether the compiled side of fwd and dynamic tests runs under torch.inference_mode() rather than
# torch.no_grad() (``forward_context``); the ``inference_mode`` knob sets it.
INFERENCE_MODE = False


def forward_context(compiled=True):
    """The grad mode a forward-only run is made in: ``torch.inference_mode()`` for the compiled side
    when ``INFERENCE_MODE`` is set, else ``torch.no_grad()`` (always for the eager reference, so a
    difference is the compiler's). Plain torch: copied into fwd and dynamic repro.py scripts."""
    import torch

    return torch.inference_mode() if INFERENCE_MODE and compiled else torch.no_grad()

# Whether a torch.compile backend's compile is answered from torch's on-disk caches
# (``served_from_caches``); the ``warm_cache`` knob sets it.
WARM_CACHE = False


def served_from_caches(compile_model):
    """``compile_model``, which under ``WARM_CACHE`` first compiles and runs a twin of the model on
    twins of the inputs (same values, sizes, strides and storage offsets; a backward too where grad
    is enabled and an output needs it), writing the FX graph and AOTAutograd cache entries, then
    compiles the model itself after ``torch._dynamo.reset()`` (which ``compile_model`` does): that
    compile is served from the caches, and its callable is the one tested. Plain torch: copied into
    the repro.py of a case that has the knob."""
    def compile_warm(model, inputs, dynamic=False):
        if not WARM_CACHE:
            return compile_model(model, inputs, dynamic)
        import copy

        import torch

        def twin(t):
            if not isinstance(t, torch.Tensor):
                return t
            with torch.no_grad():
                out = torch.empty(0, dtype=t.dtype, device=t.device)
                out.set_(t.untyped_storage().clone(), t.storage_offset(), t.size(), t.stride())
            return out.requires_grad_(t.requires_grad)

        twins = [twin(t) for t in inputs]
        outs = compile_model(copy.deepcopy(model), twins, dynamic)(*twins)
        outs = outs if isinstance(outs, (tuple, list)) else [outs]
        needs = [o for o in outs if isinstance(o, torch.Tensor) and o.requires_grad]
        if needs and torch.is_grad_enabled():
            torch.autograd.backward(needs, [torch.ones_like(o) for o in needs])
        return compile_model(model, inputs, dynamic)
    return compile_warm

ENV_WITHOUT = "ASSAY_REPRO_WITHOUT"
# The knob name under which a model's own needs are set (``model_knobs``): not a campaign knob,
# never drawn, never left out by ``ASSAY_REPRO_WITHOUT``.
MODEL_KNOB = "model"


def model_knobs(graph_meta) -> dict:
    """The settings a model needs to compile as written, as knobs: ``{MODEL_KNOB: {setting: value}}``
    from ``graph.meta["compile_settings"]`` (dynamo's capture flags for data-dependent calls,
    ``fuzz.gen.datadep``), or ``{}``. Only ``dynamo.``/``inductor.`` settings to plain values count."""
    from fuzz.gen.datadep import META_KEY

    wanted = (graph_meta or {}).get(META_KEY) if isinstance(graph_meta, dict) else None
    if not isinstance(wanted, dict):
        return {}
    settings = {k: v for k, v in sorted(wanted.items()) if isinstance(k, str) and k.partition(".")[0] in
                ("dynamo", "inductor") and isinstance(v, (bool, int, float, str))}
    return {MODEL_KNOB: settings} if settings else {}


def set_knobs(knobs):
    """Set compiler settings (``{name: {"inductor.attr": value}}``); returns the old values by setting.
    A setting this torch does not have is left out (a case from another version still runs), and so
    is a pass name in ``inductor.*_fusion_options`` that this torch's FX passes do not know (its
    compile would raise a KeyError, which is no finding about the compiler).
    ``assay.NAME`` is a global of the module defining this function (``COMPILE_DYNAMIC``)."""
    import importlib

    roots = {"inductor": "torch._inductor.config", "dynamo": "torch._dynamo.config", "assay": __name__}
    old = {}
    for settings in knobs.values():
        for key, value in settings.items():
            if key.endswith("_fusion_options") and isinstance(value, dict) and value:
                try:
                    from torch._inductor.fx_passes import group_batch_fusion, post_grad, pre_grad

                    known = (set(pre_grad.PRE_GRAD_PATTERNS) | set(group_batch_fusion.PRE_GRAD_FUSIONS)
                             if key == "inductor.pre_grad_fusion_options" else
                             set(post_grad.POST_GRAD_PATTERNS) | set(group_batch_fusion.POST_GRAD_FUSIONS))
                    value = {name: v for name, v in value.items() if name in known}
                except (ImportError, AttributeError):  # another layout of torch's passes: set as recorded
                    pass
            root, _, path = key.partition(".")
            obj = importlib.import_module(roots[root])
            *parents, attr = path.split(".")
            for p in parents:
                obj = getattr(obj, p, None)
            if obj is None or not hasattr(obj, attr):
                continue
            old.setdefault(key, getattr(obj, attr))
            setattr(obj, attr, value)
    return old


@contextlib.contextmanager
def applied(knobs: dict | None):
    """Run the body under ``knobs`` (as recorded: ``{name: {setting: value}}``), then restore."""
    if not knobs:
        yield
        return
    old = set_knobs(knobs)
    try:
        yield
    finally:
        set_knobs({"restore": old})


def settings_of(names) -> dict:
    """``{name: settings}`` for knob names; an unknown name is an ``AssayError``."""
    out = {}
    for n in names:
        if n not in KNOBS:
            raise AssayError(f"unknown compiler knob {n!r}; choose from {', '.join(KNOBS)}")
        out[n] = dict(KNOBS[n])
    return out


def draw(rng: random.Random, weights: dict | None = None, most: int = 2) -> dict:
    """One to ``most`` knobs, drawn by ``weights`` (name -> weight; default uniform)."""
    names = list(KNOBS)
    w = [max(0.05, float((weights or {}).get(n, 1.0))) for n in names]
    count = rng.randint(1, most)
    chosen: list[str] = []
    while len(chosen) < count:
        n = rng.choices(names, weights=w)[0]
        if n not in chosen:
            chosen.append(n)
    return settings_of(sorted(chosen))


def without(knobs: dict, names) -> dict:
    """``knobs`` minus the named ones (what ``ASSAY_REPRO_WITHOUT`` does inside a repro)."""
    drop = set(names)
    return {k: v for k, v in (knobs or {}).items() if k not in drop}


# Backends whose compiles run inductor's freezing pass when ``inductor.freezing`` is set.
FREEZING_BACKENDS = ("inductor", "aoti")


def freezing_forbids(buffers: list[str], backend_name: str, mode: str) -> str | None:
    """Why a test is not judged: inductor's freezing is in force and ``forward`` updates the
    buffers ``buffers``. Freezing inlines weights as constants ("After freezing, weights can no
    longer be updated", torch._inductor.config); a graph that reads a buffer another graph writes
    (across a graph break) keeps the value the buffer had when it was compiled. Inference modes
    only: a graph that needs gradients is never frozen."""
    if not buffers or mode not in ("fwd", "dynamic") or backend_name not in FREEZING_BACKENDS:
        return None
    from torch._inductor import config

    if not config.freezing:
        return None
    return (f"not judged: inductor's freezing inlines weights as constants and forbids updating them, "
            f"and forward updates the buffer {buffers[0]}")
