"""The functions around the higher-order operators of generated programs (``fuzz.gen.hop_forms``).

Two kinds, both pasted into a program by their own source (``inspect.getsource``) above
``class Model``, so a saved program still needs only torch:

- **functions the operators call**: a scan step, a loop's condition and body, an attention score
  modification. A graph names one as ``{"fn": "fuzz.gen.hop_fns.<name>"}``; the interpreter calls
  this module's function and the program writes the bare name.
- **the operators themselves** (``HOP_CALLS``): the program calls ``scan(...)``, ``while_loop(...)``
  ... (the functions below), which call torch's operator where the code is compiled or exported
  (``torch.compiler.is_compiling()``: dynamo, export, AOTInductor) and otherwise compute the same
  thing with plain torch calls in Python (``*_in_eager``). torch's operators called eagerly trace
  their functions with dynamo first (``torch.compile(backend="eager")``): the eager reference would
  run the compiler under test, and what it accepts would depend on what the process compiled
  before. The generator's runs call the ``*_in_eager`` functions too (``fuzz.gen.interpret``).
  Both ways the outputs are made contiguous: where a Python loop and torch's operator lay an
  output out differently (a while_loop carrying a permuted tensor, a scan of a 7-d tensor), the
  stride judgement would compare two implementations' choices, not a compiler's promise.
  What torch's operators reject the equivalents may accept (scan's init and carry must agree in
  strides): the compiled run then raises ``UncapturedHigherOrderOpError``, which
  ``fuzz.campaign.oracle.classify_exception`` calls invalid, as torch's eager operator raises it too.
"""

from __future__ import annotations

import torch

from fuzz.ir.opnames import COND_OP


# -- scan steps: (carry, x) -> (next carry, y) ---------------------------------------------
def scan_running_sum(carry, x):
    """A running sum; each step also emits its sine."""
    total = carry + x
    return total, torch.sin(total)


def scan_decay(carry, x):
    """A linear recurrence (h = 0.5 h + x, an RNN without weights); each step emits tanh(h)."""
    h = 0.5 * carry + x
    return h, torch.tanh(h)


def scan_running_max(carry, x):
    """A running maximum; each step emits the slice scaled by it."""
    top = torch.maximum(carry, x)
    return top, top * x


def scan_product_gate(carry, x):
    """A gated product: carry * sigmoid(x); each step emits carry - x."""
    gated = carry * torch.sigmoid(x)
    return gated, carry - x


SCAN_STEPS = ("scan_running_sum", "scan_decay", "scan_running_max", "scan_product_gate")


# -- while_loop: a counter i and a tensor x carried ----------------------------------------
def loop_below_three(i, x):
    """Three turns."""
    return i < 3


def loop_below_five(i, x):
    """Five turns."""
    return i < 5


def loop_sin_step(i, x):
    """One turn: x + sin(x)."""
    return i + 1, x + torch.sin(x)


def loop_halve_step(i, x):
    """One turn: x halved, minus its mean."""
    return i + 1, 0.5 * x - x.mean()


def loop_square_step(i, x):
    """One turn: a clamped square (it grows quickly)."""
    return i + 1, torch.clamp(x * x, -4.0, 4.0)


LOOP_CONDS = ("loop_below_three", "loop_below_five")
LOOP_STEPS = ("loop_sin_step", "loop_halve_step", "loop_square_step")


# -- map: one function of a slice -----------------------------------------------------------
def map_normalise(x):
    """The slice over one plus its absolute sum."""
    return x / (x.abs().sum() + 1.0)


def map_softmax_last(x):
    """Softmax over the slice's last dim."""
    return torch.softmax(x, dim=-1)


MAP_FNS = ("map_normalise", "map_softmax_last")


# -- flex_attention score modifications: (score, batch, head, q_idx, kv_idx) -> score --------
def score_causal(score, b, h, q_idx, kv_idx):
    """Causal: a query sees keys at or before it."""
    return torch.where(q_idx >= kv_idx, score, -float("inf"))


def score_relative(score, b, h, q_idx, kv_idx):
    """A relative-position bias."""
    return score + (q_idx - kv_idx)


def score_alibi(score, b, h, q_idx, kv_idx):
    """ALiBi: a distance penalty whose slope depends on the head."""
    return score - (h + 1) * 0.25 * torch.abs(q_idx - kv_idx)


def score_soft_cap(score, b, h, q_idx, kv_idx):
    """A tanh soft cap of the scores (as in Gemma 2)."""
    return 5.0 * torch.tanh(score / 5.0)


SCORE_MODS = ("score_causal", "score_relative", "score_alibi", "score_soft_cap")

# -- the operators: torch's where compiled, the same computation in Python otherwise --------
def cond_in_eager(pred, true_fn, false_fn, operands):
    """What ``torch.cond`` computes outside a compiled region: the branch ``pred`` picks, called on
    the operands (torch's own dense kernel of the ``cond`` higher-order op does exactly this).

    ``torch.cond`` itself, called eagerly, first has dynamo compile its branches (0.2-0.4 s per new
    branch pair, shape or dtype, until dynamo's recompile limit for the wrapper is reached and it
    runs uncompiled): the generator's checks, value search and guard runs call this instead, so
    they cost a branch call and do not depend on what dynamo compiled earlier in the process
    (automatic dynamic shapes after a recompile change what it accepts). The program does the
    same in eager and calls ``torch.cond`` where it is compiled or exported (``cond`` below). On meta tensors (shape propagation, ``aten_ops``) both branches run: the
    predicate has no value, and both branches' operators are the call's."""
    if getattr(pred, "device", None) is not None and pred.device.type == "meta":
        picked = true_fn(*operands)
        false_fn(*operands)
        return picked
    return (true_fn if bool(pred) else false_fn)(*operands)

def cond(pred, true_fn, false_fn, operands):
    """torch.cond when compiled or exported; in eager, the branch pred picks (no dynamo)."""
    if torch.compiler.is_compiling():
        return torch.cond(pred, true_fn, false_fn, operands)
    return cond_in_eager(pred, true_fn, false_fn, operands)


def scan_in_eager(combine_fn, init, xs, dim=0, reverse=False):
    """scan as a Python loop over xs's slices along dim: carry, ys stacked along dim (laid out in
    memory as torch's operator lays them out: compiled outputs are judged on their strides too)."""
    carry, ys = init, []
    order = range(xs.size(dim) - 1, -1, -1) if reverse else range(xs.size(dim))
    for k in order:
        carry, y = combine_fn(carry, xs.select(dim, k))
        ys.append(y)
    if reverse:
        ys.reverse()
    return carry, torch.stack(ys).movedim(0, dim)  # torch's layout: the scanned dim outermost in memory


def scan(combine_fn, init, xs, dim=0, reverse=False):
    """torch's scan when compiled or exported; in eager, scan_in_eager (no dynamo). Contiguous
    outputs both ways: the layout of an operator's output is its implementation's, not a promise."""
    if torch.compiler.is_compiling():
        out = torch._higher_order_ops.scan(combine_fn, init, xs, dim=dim, reverse=reverse)
    else:
        out = scan_in_eager(combine_fn, init, xs, dim, reverse)
    return tuple(t.contiguous() for t in out)


def associative_scan_in_eager(combine_fn, xs, dim, reverse=False, combine_mode="generic"):
    """The inclusive scan of xs along dim with combine_fn, folded one slice at a time. Over a dim of
    one element it returns a view of xs, as torch's operator does (eager and compiled): a later
    in-place write into xs shows in the result, and its gradient follows that write; reversed, a
    copy (torch flips xs, which copies it)."""
    if xs.size(dim) == 1:
        return xs.clone() if reverse else xs.view(xs.shape)
    out, acc = [None] * xs.size(dim), None
    order = range(xs.size(dim) - 1, -1, -1) if reverse else range(xs.size(dim))
    for k in order:
        x = xs.select(dim, k)
        acc = x if acc is None else (combine_fn(x, acc) if reverse else combine_fn(acc, x))
        out[k] = acc
    return torch.stack(out).movedim(0, dim)  # torch's layout: the scanned dim outermost in memory


def associative_scan(combine_fn, xs, dim, reverse=False, combine_mode="generic"):
    """torch's associative_scan when compiled or exported; in eager, associative_scan_in_eager."""
    if torch.compiler.is_compiling():
        out = torch._higher_order_ops.associative_scan(combine_fn, xs, dim, reverse=reverse, combine_mode=combine_mode)
    else:
        out = associative_scan_in_eager(combine_fn, xs, dim, reverse, combine_mode)
    return out.contiguous()


def map_in_eager(f, xs, *args):
    """f of each slice of xs along its first dim, stacked."""
    return torch.stack([f(x, *args) for x in xs.unbind(0)])


def hop_map(f, xs, *args):
    """torch._higher_order_ops.map when compiled or exported; in eager, map_in_eager."""
    if torch.compiler.is_compiling():
        return torch._higher_order_ops.map(f, xs, *args).contiguous()
    return map_in_eager(f, xs, *args).contiguous()


def while_loop_in_eager(cond_fn, body_fn, carried_inputs):
    """body_fn applied to the carried tensors while cond_fn holds."""
    carried = tuple(carried_inputs)
    while bool(cond_fn(*carried)):
        carried = tuple(body_fn(*carried))
    return carried


def while_loop(cond_fn, body_fn, carried_inputs):
    """torch's while_loop when compiled or exported; in eager, while_loop_in_eager."""
    if torch.compiler.is_compiling():
        out = torch._higher_order_ops.while_loop(cond_fn, body_fn, carried_inputs)
    else:
        out = while_loop_in_eager(cond_fn, body_fn, carried_inputs)
    return tuple(t.contiguous() for t in out)


def flex_attention_in_eager(query, key, value, score_mod=None, scale=None):
    """Attention as flex_attention defines it: scores q k^T * scale (in float32, float64 for float64
    inputs), then score_mod(score, batch, head, q_idx, kv_idx) on every score, then softmax (a row
    whose scores are all -inf gives zeros), in the query's dtype, times value. Over no keys torch's
    flex_attention raises (it takes a max over them), and with no key heads (it divides by their
    number), and so does this."""
    if key.size(-2) == 0:
        raise IndexError("flex_attention over an empty key sequence: max() of a zero-size dim, as torch's")
    if key.size(-3) == 0:
        raise ZeroDivisionError("flex_attention with no key heads: torch's divides the query heads by them")
    work = torch.float64 if query.dtype == torch.float64 else torch.float32
    scale = query.size(-1) ** -0.5 if scale is None else scale
    scores = (query.to(work) @ key.to(work).transpose(-2, -1)) * scale
    if score_mod is not None:
        b, h, m, n = (torch.arange(scores.size(k), device=scores.device).view([-1 if j == k else 1 for j in range(4)])
                      for k in range(4))
        scores = score_mod(scores, b, h, m, n)
    weights = torch.softmax(scores, dim=-1)
    weights = torch.where(torch.all(scores == -float("inf"), dim=-1, keepdim=True), 0.0, weights)
    return weights.to(query.dtype) @ value


def flex_attention(query, key, value, score_mod=None, scale=None):
    """torch's flex_attention when compiled or exported; in eager, flex_attention_in_eager."""
    if torch.compiler.is_compiling():
        out = torch.nn.attention.flex_attention.flex_attention(query, key, value, score_mod=score_mod, scale=scale)
    else:
        out = flex_attention_in_eager(query, key, value, score_mod, scale)
    return out.contiguous()


# operator -> (torch's operator, a graph node's op; the function a program calls; its eager equivalent)
HOPS = {
    "scan": ("torch._higher_order_ops.scan", "scan", "scan_in_eager"),
    "associative_scan": ("torch._higher_order_ops.associative_scan", "associative_scan", "associative_scan_in_eager"),
    "map": ("torch._higher_order_ops.map", "hop_map", "map_in_eager"),
    "while_loop": ("torch._higher_order_ops.while_loop", "while_loop", "while_loop_in_eager"),
    "flex_attention": ("torch.nn.attention.flex_attention.flex_attention", "flex_attention", "flex_attention_in_eager"),
}
# by a graph node's op; torch.cond is placed by fuzz.gen.forms, not by the hop form
HOP_CALLS = {COND_OP: ("cond", "cond_in_eager"), **{op: (call, eager) for op, call, eager in HOPS.values()}}


def eager_equivalents() -> dict:
    """torch operator -> the function the generator's runs call instead (``*_in_eager``)."""
    return {op: globals()[eager] for op, (_, eager) in HOP_CALLS.items()}


def program_helpers(ops: set, fns: set) -> list[str]:
    """The sources a program needs for the operators ``ops`` (graph node ops) it calls and the
    functions ``fns`` (``{"fn": ...}`` names) it passes them, each once, in a fixed order."""
    names = [n for op in sorted(ops & set(HOP_CALLS)) for n in (HOP_CALLS[op][1], HOP_CALLS[op][0])]
    names += sorted({helper_name(f) for f in fns} - {None})
    return [helper_source(n) for n in names]


PREFIX = __name__ + "."


def helper_name(op: str) -> str | None:
    """The bare name of a function of this module named by ``op`` (a dotted path), else None."""
    return op[len(PREFIX):] if op.startswith(PREFIX) else None


def _function_sources() -> dict:
    """Every function's source, read once, at import: ``inspect.getsource`` reads the file on disk
    at the line numbers of the loaded code, so a process that reads it later, after the file
    changed (an upgrade during a campaign), would paste other lines into its programs (seen: a
    reducer wrote programs that lacked ``flex_attention``)."""
    import inspect

    return {name: inspect.getsource(fn) for name, fn in list(globals().items())
            if inspect.isfunction(fn) and fn.__module__ == __name__}


def helper_source(name: str) -> str:
    """The source of this module's function ``name``, as pasted into a program."""
    return _SOURCES[name]


_SOURCES = _function_sources()  # last: every function above is defined
