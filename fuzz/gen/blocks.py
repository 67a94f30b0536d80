"""Model-shaped programs (``ModelPolicy.form == "blocks"``): a model assembled from the blocks real
networks are made of, on the inferred rules.

A *block* is a short list of steps; a step is a list of operator stems (``RuleSet.stem``) to
choose from and the block variables it reads (``cur``: the running tensor, ``in``: the block's
input, or one a previous step stored). The builder places each step *forward* on those tensors
(``Builder.insert_forward(info, on=...)``), so every shape constraint is still the rule's and the
solver's: when no rule of the step's stems fits (missing, unsatisfiable, rejected by the call
check) an optional step is skipped and a required one falls back to one random operator
(``Builder.insert_one``), as the random form would have placed. Blocks follow each other on the
previous block's output until the graph has ``cfg.nodes`` operators. ``graph.meta["blocks"]``
records the block mix (the names of the blocks placed, in order).

The attention block is ``torch.nn.functional.scaled_dot_product_attention(x, x, x, ...)`` on its
input where a rule of it fits (held back from the random form, ``fuzz.gen.deny``; its shipped rules:
rank-3 query/key/value, ``is_causal`` true or false, ``dropout_p`` 0 only, docs/generator.md), else
``q @ k^T``, optional scale, softmax, ``@ v`` on the rules of ``matmul``/``bmm``/``transpose``/
``softmax``. Not covered: a block's tensors are the ones its rules take (a block of an integer model
is mostly fallbacks), and sdpa's ``attn_mask``/``scale`` (no recorded call of the shipped rules has them).
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzz.gen.builder import Builder
from fuzz.ir.opnames import short_name

ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "sigmoid", "hardswish", "leaky_relu", "elu", "mish", "softplus",
               "relu6", "hardtanh", "hardsigmoid", "selu", "celu", "logsigmoid", "softsign", "tanhshrink")
NORMS = ("layer_norm", "batch_norm", "group_norm", "instance_norm", "rms_norm", "normalize", "layernorm",
         "batchnorm1d", "batchnorm2d", "groupnorm", "rmsnorm", "local_response_norm")
LINEARS = ("linear", "matmul", "addmm", "mm", "bmm", "baddbmm", "bilinear")
CONVS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d")
POOLS = ("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool1d", "avg_pool2d",
         "max_pool1d", "max_pool2d", "max_pool2d_with_indices", "max_pool3d_with_indices", "mean", "amax", "sum",
         "logsumexp")
SOFTMAXES = ("softmax", "log_softmax", "_softmax", "_log_softmax")
CASTS = ("to", "half", "float", "bfloat16", "double", "type_as")
RESHAPES = ("reshape", "view", "permute", "transpose", "flatten", "unsqueeze", "squeeze", "contiguous", "t",
            "movedim", "swapaxes", "unflatten")
BIAS = ("add", "sub")


@dataclass(frozen=True)
class Step:
    stems: tuple            # operator stems to choose from
    on: tuple = ("cur",)    # block variables read, in slot order (the first is required)
    out: str = "cur"        # the variable the new node's first output is stored in
    optional: bool = False  # skipped (no fallback) when no rule fits
    ends: bool = False      # when placed, the block's later steps are not placed


# name -> steps. Each builds on the running tensor ``cur``; ``in`` is the block's input.
BLOCKS: dict[str, tuple] = {
    "linear_act": (Step(LINEARS), Step(BIAS, optional=True), Step(ACTIVATIONS)),
    "conv_act": (Step(CONVS), Step(NORMS, optional=True), Step(ACTIVATIONS)),
    "norm": (Step(NORMS),),
    "norm_act": (Step(NORMS), Step(ACTIVATIONS)),
    "residual": (Step(LINEARS + ACTIVATIONS), Step(ACTIVATIONS, optional=True), Step(("add",), on=("cur", "in"))),
    "attention": (Step(("scaled_dot_product_attention",), on=("in", "in", "in"), optional=True, ends=True),
                  Step(("transpose",), on=("in",), out="kt"), Step(("matmul", "bmm"), on=("in", "kt")),
                  Step(("mul", "div"), optional=True), Step(SOFTMAXES), Step(("matmul", "bmm"), on=("cur", "in"))),
    "pool_head": (Step(POOLS), Step(("flatten", "reshape", "view"), optional=True), Step(LINEARS)),
    "softmax": (Step(SOFTMAXES),),
    "cast": (Step(CASTS),),
    "reshape": (Step(RESHAPES),),
}
BLOCK_NAMES = tuple(BLOCKS)


def _takes_all(info, keys: list) -> bool:
    """Whether the rule has a distinct operand slot for each (rank, dtype) of ``keys``."""
    free = list(range(len(info.rule.ranks)))
    for rank, dtype in keys:
        slot = next((s for s in free if info.rule.ranks[s] == rank and any(c[0][s] == dtype for c in info.combos)), None)
        if slot is None:
            return False
        free.remove(slot)
    return True


def _place(b: Builder, stems: tuple, on: list) -> bool:
    """One operator of ``stems`` placed forward on the tensors ``on`` (True if placed)."""
    t = b.tensors[on[0]]
    key = (t.rank, t.dtype)
    names = [n for st in stems for n in b.rs.stem_names.get(st, ()) if n in b.rs.ops_taking.get(key, ())]
    names += [n for n, infos in sorted(b.rs.held_back.items())
              if short_name(infos[0].rule.op) in stems and any(key in i.slot_keys for i in infos)]
    for _ in range(min(6, 2 * len(names))):
        name = b.ch.choice(names)
        fit = [i for i in b.rs.by_op.get(name) or b.rs.held_back[name] if key in i.slot_keys]
        if not fit:
            continue
        # Rules that can read every tensor of ``on`` first (a residual add of two tensors, q @ k^T).
        fit = [i for i in fit if _takes_all(i, [(b.tensors[o].rank, b.tensors[o].dtype) for o in on])] or fit
        if b.insert_forward(b.ch.choice(fit), on=on):
            b.used_ops.add(name)
            b.used_stems.add(b.rs.stem.get(name, name))
            b.stats["forward"] += 1
            return True
    return False


def _run_block(b: Builder, steps: tuple, cur: str) -> tuple[str, int]:
    """Place one block's steps starting from ``cur``; (the running tensor after it, fallbacks used)."""
    env = {"cur": cur, "in": cur}
    fallbacks = 0
    for step in steps:
        on = [env[v] for v in step.on if v in env]
        before = b.nodes[-1] if b.nodes else None
        if _place(b, step.stems, on):
            env[step.out] = b.nodes[-1].outputs[0]
            if step.ends:
                break
            continue
        if step.optional:
            continue
        # No rule of the step fits: one random operator instead (it may read anything in the graph).
        fallbacks += 1
        if b.insert_one() and b.nodes[-1] is not before:
            env[step.out] = b.nodes[-1].outputs[0]
    return env["cur"], fallbacks


def first_tensor(b: Builder) -> str:
    """The input blocks start from: a float tensor of rank 2-4 (the model's float or complex theme if it
    has one: complex-valued networks are linear and conv layers with complex weights and activations)."""
    dtype = b.cfg.policy.dtype if b.cfg.policy.dtype in ("float16", "bfloat16", "complex64") else "float32"
    ranks = [r for r in (2, 3, 4) if (r, dtype) in b.rs.ops_taking] or [2]
    t, c = b.new_tensor(b.ch.choice(ranks), dtype, "input")
    b.add(c)
    b.tensors[t.name] = t
    return t.name


def grow_blocks(b: Builder) -> list[str]:
    """Fill ``b`` with blocks up to ``cfg.nodes`` operators; the names of the blocks placed."""
    cur = first_tensor(b)
    placed: list[str] = []
    fallbacks = 0
    misses = 0
    while len(b.nodes) < b.cfg.nodes and misses < 3:
        name = b.ch.choice(BLOCK_NAMES)
        n0 = len(b.nodes)
        cur, fb = _run_block(b, BLOCKS[name], cur)
        fallbacks += fb
        if len(b.nodes) == n0:
            misses += 1
            continue
        misses = 0
        placed.append(name)
    b.stats["block_fallbacks"] = fallbacks
    return placed
