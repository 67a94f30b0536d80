"""Random valid models from inferred operator rules (NNSmith/NeuRI-style).

Generation keeps every tensor's dims as Z3 integers and grows the graph one
operator at a time:

- *pick an operator*: uniformly among operator names not yet in this graph (all
  names once every one is used), then one of its signatures (rules) and one of the
  dtype combinations the rule saw valid;
- *insert it forward* (its tensor operands are existing tensors whose rank and
  dtype fit, at least one of them; the rest are new graph inputs or parameters)
  or *backward* (it produces a tensor that replaces an existing graph input; all
  its operands are new inputs);
- add the rule's constraints and output-shape expressions (``fuzz.ir.dsl.to_z3``)
  under a solver ``push``; keep the operator if the solver stays satisfiable,
  ``pop`` otherwise. Integer arguments are first tried fixed (from a recorded
  valid call or drawn from the recorded range), which keeps the problem linear
  and fast; only if that fails are they left to Z3.

Rules with ``status="concrete"`` enter as concrete operators: shapes, integers
and dtypes of one recorded valid call. An existing tensor is used as an operand
only if it can be made exactly that shape; otherwise the operands are new inputs.

Finally the dims are solved for concrete values with randomised lower bounds
(diverse shapes), and the total number of elements of all tensors (inputs,
parameters, activations) is checked against ``max_elements``; if it is over, the
dim cap is lowered and the model re-solved.

Every node is then run once on real CPU values (``fuzz.gen.values.search``, which
also looks for finite values). A node whose call fails or whose outputs disagree
with the predicted shape is dropped: its outputs become graph inputs. How often
that happens is recorded in ``graph.meta["guard"]``; it measures rule quality.

All choices go through a *chooser* (``RandomChooser`` from a seed in the CLI,
Hypothesis's data in ``fuzz.strategies``), so one code path serves both.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from fuzz.ir.dsl import simplify, smt_int, to_smtlib, walk
from fuzz.ir.graph import Graph, Node, replace_refs
from fuzz.ir.opnames import display_name, identifier_stem, last_component, short_name
from fuzz.ir.rule import Rule
from fuzz.ir.template import fill_call

DEFAULT_MAX_ELEMENTS = 1 << 22
DEFAULT_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")
FLOAT_DTYPES = {"float32", "float64", "float16", "bfloat16"}

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
    # data-dependent output shapes
    "nonzero", "nonzero_static", "argwhere", "unique", "unique_consecutive", "unique_dim", "_unique", "_unique2",
    "masked_select", "bincount", "histogram", "histogramdd", "repeat_interleave",
    # aliasing into storage we do not control
    "as_strided", "as_strided_scatter", "as_strided_copy", "set", "storage_offset",
    # scalars out, global state, I/O
    "item", "_local_scalar_dense", "tolist", "numpy", "manual_seed", "seed", "save", "load", "from_file",
    "set_default_dtype", "_assert_async", "_assert_tensor_metadata", "_print", "print",
    # native crashes on shapes or values the rules allow (torch 2.13; they kill the generating
    # process): negative LDL pivots corrupt the heap, so do lu_unpack's pivots when their batch
    # shape disagrees with LU's; the private CPU flash-attention kernel divides by zero (SIGFPE)
    # when query/key batch or head counts disagree
    "linalg_ldl_solve", "ldl_solve", "lu_unpack", "scaled_dot_product_flash_attention_for_cpu",
)
# Substrings that exclude an operator anywhere in its name.
DENY_SUBSTRINGS = ("torch.testing", "torch.onnx", "torch.jit", "torch.autograd", "torch.utils", "torch.export", "torch._refs", "torch._prims", "_decomp", "torch.torch.", "sparse", "quantiz", "mkldnn", "nested", "_foreach", "torch.nn.init.", "_fused_", "fbgemm",
                   "_cudnn", "miopen", "cuda", "_mps", "complex", "to_padded", "qscheme", "_dimI", "_values",
                   "_indices", "coalesce", "_nnz", "fake_quant", "record_stream", "_debug")


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


# ---------------------------------------------------------------------------
# choosers


class Chooser:
    """Where every random decision of the generator comes from."""

    def integer(self, lo: int, hi: int) -> int:  # inclusive
        raise NotImplementedError

    def choice(self, seq: Sequence):
        return seq[self.integer(0, len(seq) - 1)]

    def chance(self, p: float) -> bool:
        return self.integer(0, 999) < int(p * 1000)


class RandomChooser(Chooser):
    def __init__(self, seed: int | random.Random):
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi) if hi > lo else lo


# ---------------------------------------------------------------------------
# the prepared rule set


@dataclass
class RuleInfo:
    rule: Rule
    combos: list                    # [(in dtypes, out dtypes)] allowed
    slot_keys: set                  # {(rank, dtype)} any operand slot may take
    out_keys: set                   # {(rank, dtype)} any output may have
    examples: list                  # usable recorded calls
    int_ranges: list                # [(lo, hi)] per int placeholder
    n_out: int
    smt: Any = None                 # (constraint templates, output-dim templates), built on first use

    def smt_templates(self) -> tuple[list[str], list[list[tuple[str, str | None]]]]:
        """The rule's constraints and output dims as SMT-LIB text with ``{symbol}`` holes, parsed once
        per rule: filling the holes (``str.format_map``) is far cheaper than building Z3 terms through
        its Python API at every insertion."""
        if self.smt is None:
            # Every dim the generator makes is >= 1 and every int arg >= its range's low end, so
            # terms that matter only at zero-size dims fold away (broadcast's ``* min(.., 1)``).
            def lower(sym: str):
                if sym.startswith("x"):
                    return 1
                k = int(sym[1:])
                return self.int_ranges[k][0] if k < len(self.int_ranges) else None

            cons = [to_smtlib(simplify(p, lower), _hole) for p in self.rule.constraints]
            outs = []
            for shape in self.rule.outputs or []:
                dims = []
                for e in shape:
                    e = simplify(e, lower)
                    for sub in walk(e):
                        if isinstance(sub, list) and sub[0] in ("//", "%") and not isinstance(sub[2], int):
                            cons.append(f"(>= {to_smtlib(sub[2], _hole)} 1)")
                    dims.append((to_smtlib(e, _hole), e if isinstance(e, str) else None))
                outs.append(dims)
            self.smt = (cons, outs)
        return self.smt


def _hole(symbol: str) -> str:
    """A symbol as a ``str.format_map`` hole in a rule's SMT-LIB templates."""
    return "{" + symbol + "}"


_CACHE_LIMIT = 2048


class RuleSet:
    """Rules fit for generation, grouped by operator name."""

    def __init__(self, rules: list[Rule], dtypes: Sequence[str] | None = None, ops: set | None = None):
        allowed = set(dtypes or DEFAULT_DTYPES)
        self.denied: dict[str, str] = {}
        self.by_op: dict[str, list[RuleInfo]] = {}
        for rule in rules:
            if ops is not None and rule.op not in ops and last_component(rule.op) not in ops:
                continue
            reason = deny_reason(rule)
            info = None if reason else self._prepare(rule, allowed)
            if info is None:
                self.denied[rule.key] = reason or "no usable dtype combination or example"
                continue
            self.by_op.setdefault(display_name(rule.op, rule.api, rule.overload), []).append(info)
        self.ops = sorted(self.by_op)
        self.n_rules = sum(len(v) for v in self.by_op.values())
        # (rank, dtype) -> operators with a rule that can take / produce such a tensor.
        self.ops_taking: dict[tuple, set] = {}
        self.ops_making: dict[tuple, set] = {}
        for op, infos in self.by_op.items():
            for info in infos:
                for k in info.slot_keys:
                    self.ops_taking.setdefault(k, set()).add(op)
                for k in info.out_keys:
                    self.ops_making.setdefault(k, set()).add(op)
        self._unions: dict = {}
        self._stem_index: dict = {}
        self.stem = {op: op_stem(infos[0].rule) for op, infos in self.by_op.items()}
        self.stem_names: dict[str, list] = {}
        for op in self.ops:
            self.stem_names.setdefault(self.stem[op], []).append(op)
        self.stems = sorted(self.stem_names)
        self.lead_orders: dict[int, list] = {}  # seed -> stems in the order models lead with them

    def stem_index(self, ops: frozenset) -> tuple[list, dict]:
        """(sorted stems of ``ops``, stem -> sorted names in ``ops``), cached per operator set."""
        got = self._stem_index.get(ops)
        if got is None:
            if len(self._stem_index) > _CACHE_LIMIT:
                self._stem_index.clear()
            by: dict[str, list] = {}
            for op in sorted(ops):
                by.setdefault(self.stem[op], []).append(op)
            got = self._stem_index[ops] = (sorted(by), by)
        return got

    def ops_for(self, keys: frozenset, index: dict) -> frozenset:
        """Operators taking (``index=ops_taking``) or making (``ops_making``) a tensor of one of ``keys``."""
        ck = (keys, id(index))
        got = self._unions.get(ck)
        if got is None:
            if len(self._unions) > _CACHE_LIMIT:
                self._unions.clear()  # bounded: a long run meets many distinct tensor-kind sets
            got = self._unions[ck] = frozenset().union(*(index.get(k, ()) for k in keys))
        return got

    @staticmethod
    def _prepare(rule: Rule, allowed: set) -> RuleInfo | None:
        n_x = len(rule.ranks)
        examples = []
        for ex in rule.examples:
            outs = ex.get("out") or []
            if not outs or any(0 in o["shape"] for o in outs) or any(0 in s for s in ex["shapes"]):
                continue
            if not set(ex["dtypes"]) <= allowed or not {o["dtype"] for o in outs} <= allowed:
                continue
            examples.append(ex)
        if rule.status == "symbolic":
            if not rule.outputs:
                return None
            n_out = len(rule.outputs)
            combos = [(list(i), list(o)) for i, o in rule.dtypes
                      if len(i) == n_x and len(o) == n_out and set(i) <= allowed and set(o) <= allowed]
            if not combos:
                return None
        else:
            if not examples:
                return None
            n_out = len(examples[0]["out"])
            examples = [e for e in examples if len(e["out"]) == n_out]
            combos = sorted({(tuple(e["dtypes"]), tuple(o["dtype"] for o in e["out"])) for e in examples})
            combos = [(list(i), list(o)) for i, o in combos]
        if n_out == 0:
            return None
        slot_keys = {(rule.ranks[s], c[0][s]) for c in combos for s in range(n_x)}
        if rule.status == "symbolic":
            out_keys = {(len(rule.outputs[j]), c[1][j]) for c in combos for j in range(n_out)}
        else:
            out_keys = {(len(e["out"][j]["shape"]), e["out"][j]["dtype"]) for e in examples for j in range(n_out)}
        ranges = rule.stats.get("int_ranges", {}) if isinstance(rule.stats, dict) else {}
        int_ranges = []
        for k in range(rule.n_ints):
            lo, hi = ranges.get(f"a{k}", [None, None])
            if lo is None:
                vals = [e["ints"][k] for e in rule.examples if len(e.get("ints", [])) > k]
                lo, hi = (min(vals), max(vals)) if vals else (-1, 8)
            int_ranges.append((int(lo), int(min(hi, max(lo, 64)))))
        return RuleInfo(rule, combos, slot_keys, out_keys, examples, int_ranges, n_out)


# One integer constant of a Z3 model printed by ``Model.sexpr()``: ``(define-fun d3 () Int\n  7)``.
_MODEL_RE = re.compile(r"\(define-fun (\S+) \(\) Int\s+(\(- \d+\)|\d+)\)")



def _smt_term(x) -> str:
    """A dim or integer of the generator (a Z3 constant's name, or a Python int) as SMT-LIB text."""
    return x if isinstance(x, str) else smt_int(int(x))



def op_stem(rule: Rule) -> str:
    """What an operator computes, without how it is called: ``aten::relu``, ``torch.relu``,
    ``torch.nn.functional.relu`` and ``torch.nn.ReLU`` are all ``relu``; ``Tensor.__rsub__`` is ``rsub``."""
    return short_name(rule.op)


# ---------------------------------------------------------------------------
# generation state


@dataclass
class GenConfig:
    nodes: int = 10
    max_elements: int = DEFAULT_MAX_ELEMENTS
    max_dim: int = 16
    dtypes: tuple = DEFAULT_DTYPES
    forward_prob: float = 0.8
    param_prob: float = 0.5
    symbolic_ints_fallback: bool = True
    tries_per_node: int = 24
    concrete_source_prob: float = 0.5  # a concrete call no existing tensor fits enters on new inputs
    symbolic_source_prob: float = 0.25  # the same for a symbolic rule no existing tensor satisfies
    value_search: bool = True
    # Z3 resource units per check (deterministic, unlike a wall-clock timeout). A normal check
    # costs at most ~4,000; nonlinear rule terms (a window rule's ``(x + 2*p - d*(k-1) - 1) // s``
    # with every hole an int variable) once made one check run for minutes. 200,000 is ~0.1 s;
    # 1,000,000 made 60 20-node models take twice as long (9.2 s against 4.9 s).
    solver_rlimit: int = 200_000


@dataclass
class _Tensor:
    name: str
    dims: list                 # names of Z3 integer constants (str) or python ints
    dtype: str
    role: str                  # input | param | value
    rank: int = 0

    def __post_init__(self):
        self.rank = len(self.dims)


@dataclass
class _Pending:
    id: str
    info: RuleInfo
    operands: list             # tensor name per X slot
    ints: list                 # Z3 constant names (str) or python ints per A slot
    outputs: list              # tensor names
    kind: str
    witness: tuple | None = None  # (operand shapes, ints) at which a meta-device call agreed with the rule
    solved: list | None = None    # the integers' values in the final solution
    floats: list = field(default_factory=list)  # values of the template's {"F": m} placeholders


class GenerationError(Exception):
    pass


@dataclass
class Generated:
    graph: Graph
    leaves: dict = field(default_factory=dict)       # input/param name -> tensor
    state: dict = field(default_factory=dict)        # state-dict for build_module (params + submodule weights)
    finite: bool = True
    stats: dict = field(default_factory=dict)

    @property
    def inputs(self) -> list:
        return [self.leaves[i] for i in self.graph.inputs]

    def tensors(self) -> dict:
        """All tensors for ``fuzz.gen.program.save_program``."""
        return {**{i: self.leaves[i] for i in self.graph.inputs}, **self.state}


_BUILDER_IDS = __import__("itertools").count()


class _Builder:
    def __init__(self, ruleset: RuleSet, cfg: GenConfig, chooser: Chooser):
        import z3

        self.z3 = z3
        self.rs = ruleset
        self.cfg = cfg
        self.ch = chooser
        # A fresh Z3 context per model (~3 ms): Z3's answers then depend only on this model's
        # choices, not on what the process solved before (same seed, same graph; Hypothesis replay).
        self.ctx = z3.Context()
        self.solver = z3.Solver(ctx=self.ctx)
        self.solver.set("random_seed", chooser.integer(0, 1 << 16))
        self.solver.set("rlimit", cfg.solver_rlimit)  # per check: "unknown" counts as unsat
        self.tensors: dict[str, _Tensor] = {}
        self.nodes: list[_Pending] = []
        self.used_ops: set[str] = set()
        self.used_stems: set[str] = set()
        self.dim_vars: list = []      # free dims of fresh tensors (targets of randomised bounds)
        self.int_vars: list = []      # (var, lo, hi)
        self._undeclared: list = []   # constants to declare with the next SMT-LIB text
        self.counter = 0
        self.uid = next(_BUILDER_IDS)
        self.stats = {"tries": 0, "unsat": 0, "forward": 0, "backward": 0, "symbolic_ints": 0, "meta_rejected": 0,
                      "pinned": 0, "sources": 0}
        self._last_in_dtypes: list = []
        self._last_floats: list = []   # float values chosen for the node being inserted

    def _pick_floats(self, info: RuleInfo) -> list:
        """Values for a symbolic rule's {"F": m} placeholders: one of the float tuples it saw valid
        (``fuzz.rules.check.pick_floats`` is the same draw for the probes)."""
        return list(self.ch.choice(info.rule.floats)) if info.rule.floats else []

    # -- tensors ------------------------------------------------------------
    def _fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def _zname(self, stem: str) -> str:
        return stem  # names are per model (fresh context): identical across runs of one seed

    def _var(self, stem: str):
        """A new Z3 integer constant, by name (declared with the next text given to the solver)."""
        v = self._fresh(stem)
        self._undeclared.append(v)
        return v

    def new_tensor(self, rank: int, dtype: str, role: str, dims: list | None = None) -> tuple[_Tensor, list]:
        cons = []
        if dims is None:
            dims = []
            for _ in range(rank):
                v = self._var("d")
                dims.append(v)
                self.dim_vars.append(v)
                cons += [f"(>= {v} 1)", f"(<= {v} {self.cfg.max_dim})"]
        t = _Tensor(self._fresh({"input": "x", "param": "w"}.get(role, "t")), list(dims), dtype, role)
        return t, cons

    def candidates(self, rank: int, dtype: str) -> list[str]:
        return [n for n, t in self.tensors.items() if t.rank == rank and t.dtype == dtype]

    # -- solver -------------------------------------------------------------
    # The solver is fed SMT-LIB text (one parse per insertion) rather than terms built through Z3's
    # Python API, which spends most of its time in per-term wrappers. Declarations made inside a
    # popped scope stay known to the solver's parser, so every constant is declared exactly once.
    def _text(self, constraints: list) -> str:
        decls = "".join(f"(declare-const {v} Int)" for v in self._undeclared)
        self._undeclared = []
        return decls + "".join(f"(assert {c})" for c in constraints)

    def add(self, constraints: list) -> None:
        self.solver.from_string(self._text(constraints))

    def try_add(self, constraints: list) -> bool:
        self.stats["tries"] += 1
        self.solver.push()
        try:
            self.add(constraints)
            sat = self.solver.check() == self.z3.sat
        except self.z3.Z3Exception:
            sat = False
        if sat:
            return True
        self.solver.pop()
        self.stats["unsat"] += 1
        return False

    def model_values(self) -> dict:
        """Constant name -> value in the solver's current model (one ``sexpr`` call, parsed)."""
        model = self.solver.model()
        vals = {}
        for m in _MODEL_RE.finditer(model.sexpr()):
            v = m.group(2)
            vals[m.group(1)] = int(v) if v[0] != "(" else -int(v[3:-1])
        vals[None] = model
        return vals

    def value(self, vals: dict, d) -> int:
        if isinstance(d, int):
            return d
        if d in vals:
            return vals[d]
        # A constant the printed model leaves out (Z3 eliminated it): ask the model.
        v = vals[d] = vals[None].eval(self.z3.Int(d, self.ctx), model_completion=True).as_long()
        return v

    # -- operator choice ----------------------------------------------------
    def pick_op(self, fitting: frozenset) -> str | None:
        """An operator stem (``RuleSet.stem``) uniformly among the fitting ones not yet in this graph,
        then one of its fitting names; any fitting name once every stem is used.

        Choosing by stem first spreads the draws over distinct kernels: ``torch.relu``,
        ``torch.nn.functional.relu``, ``torch.nn.ReLU`` and ``aten::relu`` share one stem, so they
        together get a singleton's share instead of four (each is still drawn)."""
        if not fitting:
            return None
        rs, used = self.rs, self.used_stems
        # Rejection over all stems first: most stems take the common float tensors and a graph uses
        # a few of hundreds, so this nearly always ends in a draw or two. Exact filtering (which
        # sorts the fitting set) only when it does not.
        for _ in range(12):
            stem = self.ch.choice(rs.stems)
            if stem not in used:
                names = [n for n in rs.stem_names[stem] if n in fitting]
                if names:
                    return self.ch.choice(names)
        stems, by_stem = rs.stem_index(fitting)
        free = [st for st in stems if st not in used]
        if free:
            return self.ch.choice(by_stem[self.ch.choice(free)])
        return self.ch.choice(by_stem[self.ch.choice(stems)])

    def insert_one(self) -> bool:
        existing = frozenset((t.rank, t.dtype) for t in self.tensors.values())
        inputs = frozenset((t.rank, t.dtype) for t in self.tensors.values() if t.role == "input")
        fwd_ops = self.rs.ops_for(existing, self.rs.ops_taking)
        bwd_ops = self.rs.ops_for(inputs, self.rs.ops_making)
        for _ in range(self.cfg.tries_per_node):
            forward = (self.ch.chance(self.cfg.forward_prob) or not bwd_ops) and bool(fwd_ops)
            op = self.pick_op(fwd_ops if forward else bwd_ops)
            if op is None:
                return False
            infos = self.rs.by_op[op]
            if forward:
                fit = [i for i in infos if i.slot_keys & existing]
            else:
                fit = [i for i in infos if i.out_keys & inputs]
            if not fit:
                continue
            info = self.ch.choice(fit)
            ok = self.insert_forward(info) if forward else self.insert_backward(info)
            if ok:
                self.used_ops.add(op)
                self.used_stems.add(self.rs.stem[op])
                self.stats["forward" if forward else "backward"] += 1
                return True
        return False

    # -- symbolic plumbing --------------------------------------------------
    def _rule_constraints(self, info: RuleInfo, operand_dims: list[list], ints: list):
        """(constraints, output dims) of a symbolic rule applied to operands/ints, as SMT-LIB text;
        an output dim is ``(text, dim constant)`` where the rule's expression is just an operand dim."""
        env: dict[str, str] = {}
        for i, dims in enumerate(operand_dims):
            for j, d in enumerate(dims):
                env[f"x{i}_{j}"] = _smt_term(d)
        for k, a in enumerate(ints):
            env[f"a{k}"] = _smt_term(a)
        cons_t, outs_t = info.smt_templates()
        cons = [c.format_map(env) for c in cons_t]
        outs = []
        for shape in outs_t:
            dims = []
            for text, sym in shape:
                same = env[sym] if sym is not None and sym.startswith("x") else None
                dims.append((text.format_map(env), same if same is not None and not same[0] in "(0123456789" else None))
            outs.append(dims)
        return cons, outs

    def _int_choices(self, info: RuleInfo) -> list[list]:
        """Candidate integer assignments to try, in order: a recorded call's, a random draw, then symbolic."""
        n = info.rule.n_ints
        if n == 0:
            return [[]]
        opts = []
        if info.examples:
            ex = self.ch.choice(info.examples)
            opts.append(list(ex["ints"]))
        opts.append([self.ch.integer(lo, hi) for lo, hi in info.int_ranges])
        if self.ch.chance(0.5):
            opts.reverse()
        if self.cfg.symbolic_ints_fallback:
            opts.append(None)
        return opts

    def _symbolic_ints(self, info: RuleInfo) -> tuple[list, list]:
        ints, cons = [], []
        for lo, hi in info.int_ranges:
            v = self._var("a")
            ints.append(v)
            cons += [f"(>= {v} {smt_int(lo)})", f"(<= {v} {smt_int(hi)})"]
            self.int_vars.append((v, lo, hi))
        return ints, cons

    def _outputs(self, out_dims: list, combo_out: list) -> tuple[list[_Tensor], list]:
        tensors, cons = [], []
        for dims, dt in zip(out_dims, combo_out):
            vars_ = []
            for text, same in dims:
                if same is not None:
                    vars_.append(same)  # the dim of an operand (elementwise ops): already bounded
                    continue
                v = self._var("o")
                vars_.append(v)
                cons += [f"(= {v} {text})", f"(>= {v} 1)", f"(<= {v} {self.cfg.max_dim * 8})"]
            t, _ = self.new_tensor(len(vars_), dt, "value", dims=vars_)
            tensors.append(t)
        return tensors, cons

    # -- forward ------------------------------------------------------------
    def _bind_operands(self, info: RuleInfo, in_dtypes: list, fixed_shapes: list | None, fresh: bool = False,
                       single: bool = False):
        """Operand per slot: existing tensor names (at least one; exactly one with ``single``) or new
        leaves (all of them with ``fresh``). Returns (operands, new tensors, cons) or None."""
        ranks = info.rule.ranks
        operands: list = [None] * len(ranks)
        if not fresh:
            cands = [self.candidates(ranks[s], in_dtypes[s]) for s in range(len(ranks))]
            slots = [s for s in range(len(ranks)) if cands[s]]
            if not slots:
                return None
            first = self.ch.choice(slots)
            operands[first] = self.ch.choice(cands[first])
            for s in slots if not single else ():
                if s != first and self.ch.chance(0.35):
                    operands[s] = self.ch.choice(cands[s])
        new, cons = [], []
        for s in range(len(ranks)):
            if operands[s] is None:
                role = "input"
                if in_dtypes[s] in FLOAT_DTYPES and s > 0 and info.rule.api != "module" and self.ch.chance(self.cfg.param_prob):
                    role = "param"
                dims = [int(d) for d in fixed_shapes[s]] if fixed_shapes is not None else None
                t, c = self.new_tensor(ranks[s], in_dtypes[s], role, dims)
                new.append(t)
                cons += c
                operands[s] = t.name
            elif fixed_shapes is not None:
                cons += [f"(= {d} {int(v)})" for d, v in zip(self.tensors[operands[s]].dims, fixed_shapes[s]) if not isinstance(d, int)]
                if any(isinstance(d, int) and d != int(v) for d, v in zip(self.tensors[operands[s]].dims, fixed_shapes[s])):
                    return None
        return operands, new, cons

    def insert_forward(self, info: RuleInfo) -> bool:
        existing = {(t.rank, t.dtype) for t in self.tensors.values()}
        combos = [c for c in info.combos if any((info.rule.ranks[s], c[0][s]) in existing for s in range(len(info.rule.ranks)))]
        if not combos:
            return False
        if info.rule.status == "concrete":
            exs = [e for e in info.examples if any((info.rule.ranks[s], e["dtypes"][s]) in existing for s in range(len(e["dtypes"])))]
            if not exs:
                return False
            ex = self.ch.choice(exs)
            self._last_floats = list(ex.get("floats", []))
            bound = self._bind_operands(info, ex["dtypes"], ex["shapes"])
            if bound is None or not self.try_add(bound[2]):
                # No existing tensor can take the recorded shape (its dims are already fixed
                # otherwise): sometimes the call enters on new inputs of its own, a source whose
                # outputs later operators can read. Without this, concrete operators (CTC loss,
                # im2col, LSTM, lstsq...) would almost never appear.
                if not self.ch.chance(self.cfg.concrete_source_prob):
                    return False
                operands, new, _ = self._bind_operands(info, ex["dtypes"], ex["shapes"], fresh=True)
                self.stats["sources"] += 1
            else:
                operands, new, _ = bound
            outs = [_Tensor(self._fresh("t"), list(o["shape"]), o["dtype"], "value") for o in ex["out"]]
            self._commit(info, operands, new, list(ex["ints"]), outs, "concrete")
            return True
        in_dt, out_dt = self.ch.choice(combos)
        self._last_in_dtypes = list(in_dt)
        self._last_floats = self._pick_floats(info)
        bound = self._bind_operands(info, in_dt, None)
        if bound is None:
            return False
        if self._try_bound(info, bound, out_dt):
            return True
        # Two existing tensors rarely fit together (slice_scatter, a matmul's inner dims): try
        # again with one existing operand, then sometimes as a source on new inputs only.
        if sum(1 for o in bound[0] if o in self.tensors) > 1:
            if self._try_bound(info, self._bind_operands(info, in_dt, None, single=True), out_dt):
                return True
        if self.ch.chance(self.cfg.symbolic_source_prob):
            if self._try_bound(info, self._bind_operands(info, in_dt, None, fresh=True), out_dt):
                self.stats["sources"] += 1
                return True
        return False

    def _try_bound(self, info: RuleInfo, bound, out_dt) -> bool:
        if bound is None:
            return False
        operands, new, cons0 = bound
        dims_by_name = {t.name: t.dims for t in new}
        operand_dims = [dims_by_name[n] if n in dims_by_name else self.tensors[n].dims for n in operands]
        return self._try_ints(info, operand_dims, cons0, lambda ints, outs: self._commit(info, operands, new, ints, outs, "symbolic"), out_dt)

    def _try_ints(self, info, operand_dims, cons0, commit, out_dt, extra=None) -> bool:
        for ints in self._int_choices(info):
            cons = list(cons0)
            if ints is None:
                ints, c = self._symbolic_ints(info)
                cons += c
                self.stats["symbolic_ints"] += 1
            rc, out_terms = self._rule_constraints(info, operand_dims, ints)
            outs, oc = self._outputs(out_terms, out_dt)
            cons += rc + oc
            if extra is not None:
                cons += extra(outs)
            if self.try_add(cons):
                witness = self._witness(info, operand_dims, ints, outs, out_dt)
                if witness is False:
                    self.solver.pop()
                    self.stats["meta_rejected"] += 1
                    continue
                commit(ints, outs)
                self.nodes[0 if extra is not None else -1].witness = witness
                return True
        return False

    def _witness(self, info, operand_dims, ints, outs, out_dt):
        """Call the rule on meta tensors at the solver's current model: (shapes, ints) if it agrees with
        the predicted output shapes, False if the call fails or disagrees, None if meta cannot tell."""
        vals = self.model_values()

        def val(d):
            return self.value(vals, d)

        shapes = [[val(d) for d in dims] for dims in operand_dims]
        ivals = [val(a) for a in ints]
        oshapes = [[val(d) for d in t.dims] for t in outs]
        in_dt = self._last_in_dtypes
        verdict = meta_check(info.rule, shapes, in_dt, ivals, oshapes, list(out_dt), self._last_floats)
        if verdict is False:
            return False
        return (shapes, ivals)

    # -- backward -----------------------------------------------------------
    def insert_backward(self, info: RuleInfo) -> bool:
        inputs = [t for t in self.tensors.values() if t.role == "input"]
        targets = [(t, j) for t in inputs for j in range(info.n_out) if (t.rank, t.dtype) in info.out_keys]
        if not targets:
            return False
        target, j = self.ch.choice(targets)
        if info.rule.status == "concrete":
            exs = [e for e in info.examples if len(e["out"][j]["shape"]) == target.rank and e["out"][j]["dtype"] == target.dtype]
            if not exs:
                return False
            ex = self.ch.choice(exs)
            self._last_floats = list(ex.get("floats", []))
            new, cons = [], []
            for s, r in enumerate(info.rule.ranks):
                t, c = self.new_tensor(r, ex["dtypes"][s], "input", [int(d) for d in ex["shapes"][s]])
                new.append(t)
            cons += [f"(= {d} {int(v)})" for d, v in zip(target.dims, ex["out"][j]["shape"]) if not isinstance(d, int)]
            if any(isinstance(d, int) and d != int(v) for d, v in zip(target.dims, ex["out"][j]["shape"])):
                return False
            if not self.try_add(cons):
                return False
            outs = [_Tensor(self._fresh("t"), list(o["shape"]), o["dtype"], "value") for o in ex["out"]]
            self._commit_backward(info, new, list(ex["ints"]), outs, target, j, "concrete")
            return True
        combos = [c for c in info.combos if c[1][j] == target.dtype and len(info.rule.outputs[j]) == target.rank]
        if not combos:
            return False
        in_dt, out_dt = self.ch.choice(combos)
        self._last_in_dtypes = list(in_dt)
        self._last_floats = self._pick_floats(info)
        new, cons0 = [], []
        for s, r in enumerate(info.rule.ranks):
            role = "param" if in_dt[s] in FLOAT_DTYPES and s > 0 and info.rule.api != "module" and self.ch.chance(self.cfg.param_prob) else "input"
            t, c = self.new_tensor(r, in_dt[s], role)
            new.append(t)
            cons0 += c
        operand_dims = [t.dims for t in new]

        def tie(outs):
            return [f"(= {_smt_term(a)} {_smt_term(b)})" for a, b in zip(outs[j].dims, target.dims)]

        return self._try_ints(info, operand_dims, cons0,
                              lambda ints, outs: self._commit_backward(info, new, ints, outs, target, j, "symbolic"),
                              out_dt, extra=tie)

    # -- commit -------------------------------------------------------------
    def _commit(self, info, operands, new, ints, outs, kind):
        for t in new:
            self.tensors[t.name] = t
        for t in outs:
            self.tensors[t.name] = t
        self.nodes.append(_Pending(self._fresh("n"), info, operands, ints, [t.name for t in outs], kind,
                                   floats=list(self._last_floats)))

    def _commit_backward(self, info, new, ints, outs, target, j, kind):
        for t in new:
            self.tensors[t.name] = t
        # The j-th output *is* the target input from now on.
        outs[j] = target
        target.role = "value"
        for t in outs:
            self.tensors[t.name] = t
        self.nodes.insert(0, _Pending(self._fresh("n"), info, [t.name for t in new], ints, [t.name for t in outs], kind,
                                      floats=list(self._last_floats)))

    # -- solving ------------------------------------------------------------
    def solve(self) -> dict:
        """Concrete values of every z3 term, with randomised bounds and the total-size bound."""
        z3 = self.z3
        soft = []
        for v in self.dim_vars:
            if self.ch.chance(0.7):
                soft.append(f"(>= {v} {self.ch.integer(1, max(1, self.cfg.max_dim // 2))})")  # z3 tends to sit on lower bounds
        for v, lo, hi in self.int_vars:
            if self.ch.chance(0.5):
                soft.append(f"(= {v} {smt_int(self.ch.integer(lo, hi))})")
        cap = self.cfg.max_dim
        for attempt in range(6):
            self.solver.push()
            extra = list(soft) + ([f"(<= {d} {cap})" for d in self.dim_vars] if cap < self.cfg.max_dim else [])
            self.add(extra)
            res = self.solver.check()
            if res == z3.sat:
                model = self.model_values()
                self.solver.pop()
                values = self._values(model)
                total = self._total(values)
                if total <= self.cfg.max_elements:
                    return values
                cap = max(1, cap // 2)
                soft = [s for s in soft if self.ch.chance(0.3)]
                continue
            self.solver.pop()
            soft = soft[: len(soft) // 2]
            if not soft and cap >= self.cfg.max_dim:
                break
        if self.solver.check() != z3.sat:
            raise GenerationError("Z3 gave up on the final model (resource limit); try another seed")
        values = self._values(self.model_values())
        if self._total(values) > self.cfg.max_elements:
            raise GenerationError("cannot fit the model in max_elements")
        return values

    def _values(self, vals: dict) -> dict:
        """Every tensor's shape (and every node's integers) at a model (``model_values``)."""
        out = {}
        for t in self.tensors.values():
            out[t.name] = [self.value(vals, d) for d in t.dims]
        for n in self.nodes:
            n.solved = [self.value(vals, a) for a in n.ints]
        return out

    @staticmethod
    def _total(values: dict) -> int:
        return sum(math.prod(s) for s in values.values())


_META_CACHE: dict[str, bool | None] = {}
META_CPU_LIMIT = 1 << 15


def meta_check(rule: Rule, shapes, dtypes, ints, out_shapes, out_dtypes, floats=()) -> bool | None:
    """Run one call of ``rule`` without real data: True if its outputs have the predicted shapes and
    dtypes, False if it raises or disagrees, None if the meta device cannot run it.

    Small calls run on CPU zeros (faster than the meta device's Python decompositions, and zeros
    are valid indices), big ones on the meta device (nothing allocated). A CPU call that raises is
    asked again on meta: zeros are a singular matrix for ``inv``/``cholesky``/``lstsq``..., a value
    problem the value search deals with, not a shape one; only a meta call that agrees clears it."""
    import json

    key = json.dumps([rule.key, shapes, dtypes, ints, out_shapes, out_dtypes, list(floats)])
    if key in _META_CACHE:
        return _META_CACHE[key]
    small = sum(math.prod(s) for s in list(shapes) + list(out_shapes)) <= META_CPU_LIMIT
    verdict, error = _call_check(rule, shapes, dtypes, ints, out_shapes, out_dtypes, "cpu" if small else "meta", floats)
    if small and error is not None and "not implemented" not in error:
        if _call_check(rule, shapes, dtypes, ints, out_shapes, out_dtypes, "meta", floats)[0] is True:
            verdict = True
    if len(_META_CACHE) > 50 * _CACHE_LIMIT:
        _META_CACHE.clear()  # bounded (a verdict is cheap to recompute)
    _META_CACHE[key] = verdict
    return verdict


def _call_check(rule: Rule, shapes, dtypes, ints, out_shapes, out_dtypes, device: str,
                floats=()) -> tuple[bool | None, str | None]:
    """(verdict as in ``meta_check``, the error text when the call raised)."""
    import torch

    from fuzz.gen.interpret import resolve_cached as resolve_op
    from fuzz.gen.interpret import result_structure
    from fuzz.ir.record import decode_value, dtype_from_name

    verdict: bool | None
    error = None
    try:
        init, args, kwargs = fill_call(rule.template, lambda k: {"ref": k}, ints, floats)
        tensors = [torch.zeros(s, dtype=dtype_from_name(d), device=device) for s, d in zip(shapes, dtypes)]

        def make(enc):
            return tensors[enc["ref"]]

        a = decode_value(args, make, device)
        kw = {k: decode_value(v, make, device) for k, v in kwargs.items()}
        if rule.api == "module":
            cls = resolve_op(rule.op, "module")
            ia = decode_value(init["args"], make, "cpu") if init else []
            ik = {k: decode_value(v, make, "cpu") for k, v in (init or {}).get("kwargs", {}).items()}
            with torch.device(device):
                fn = cls(*ia, **ik).eval()
        else:
            fn = resolve_op(rule.op, rule.api, rule.overload)
        with torch.no_grad():
            result = fn(*a, **kw)
        _, outs = result_structure(result)
        verdict = (len(outs) == len(out_shapes)
                   and all(list(o.shape) == list(s) for o, s in zip(outs, out_shapes))
                   and all(str(o.dtype).replace("torch.", "") == d for o, d in zip(outs, out_dtypes)))
    except NotImplementedError as exc:
        verdict = None if device == "meta" else False
        error = f"not implemented: {exc}"
    except Exception as exc:
        error = str(exc)
        # Data-dependent checks (item() on meta) say nothing about the shapes.
        verdict = None if ("meta" in error.lower() or "data-dependent" in error) else False
    return verdict, error


def _to_graph(b: _Builder, shapes: dict) -> Graph:
    """The concrete Graph, tensors renamed to say what they are (x_0, w_1, conv2d_2...)."""
    g = Graph()
    rename: dict[str, str] = {}
    counter = [0]

    def name(old: str, stem: str) -> str:
        if old not in rename:
            rename[old] = f"{stem}_{counter[0]}"
            counter[0] += 1
        return rename[old]

    # Leaves first (inputs then params in order of first use), then values in node order.
    for p in b.nodes:
        for o in p.operands:
            t = b.tensors[o]
            if t.role in ("input", "param") and o not in rename:
                g.add_tensor(shapes[o], t.dtype, t.role, name=name(o, "x" if t.role == "input" else "w"))
    for i, p in enumerate(b.nodes):
        rule = p.info.rule
        outs = []
        for o in p.outputs:
            outs.append(name(o, identifier_stem(rule.op)))
            g.add_tensor(shapes[o], b.tensors[o].dtype, "value", name=rename[o])
        init, args, kwargs = fill_call(rule.template, lambda k: {"ref": rename[p.operands[k]]}, p.solved, p.floats)
        g.add_node(Node(id=f"n{i}", op=rule.op, api=rule.api, overload=rule.overload, args=args, kwargs=kwargs,
                        outputs=outs, kind=p.kind, init=init, rule=rule.key))
    consumed = set()
    for n in g.nodes:
        consumed.update(n.inputs())
    g.outputs = [t for n in g.nodes for t in n.outputs if t not in consumed]
    return g


# ---------------------------------------------------------------------------
# the public entry points


def _first_tensor(b: _Builder) -> None:
    """The seed of every graph: one input of a rank and dtype some rule can consume."""
    keys = sorted(b.rs.ops_taking)
    float_keys = [k for k in keys if k[1] == "float32" and 1 <= k[0] <= 5] or keys
    pool = float_keys if b.ch.chance(0.7) else ([k for k in keys if k[0] <= 5] or keys)
    rank, dtype = b.ch.choice(pool)
    t, c = b.new_tensor(rank, dtype, "input")
    b.add(c)
    b.tensors[t.name] = t


def _place_lead(b: _Builder, stem: str) -> bool:
    """Start the graph with an operator of ``stem``: the first tensor is one its rule takes (or,
    for an operator without tensor operands, one it makes, replaced backward), so even operators
    that rarely fit a grown graph get a fresh input whose dims are still free."""
    names = b.rs.stem_names.get(stem)
    if not names:
        return False
    name = b.ch.choice(names)
    info = b.ch.choice(b.rs.by_op[name])
    forward = bool(info.slot_keys)
    rank, dtype = b.ch.choice(sorted(info.slot_keys if forward else info.out_keys))
    t, c = b.new_tensor(rank, dtype, "input")
    b.add(c)
    b.tensors[t.name] = t
    for _ in range(3):
        if b.insert_forward(info) if forward else b.insert_backward(info):
            b.used_ops.add(name)
            b.used_stems.add(stem)
            b.stats["forward" if forward else "backward"] += 1
            b.stats["lead"] = name
            return True
    return True  # the first tensor is in place either way


def lead_stem(ruleset: RuleSet, seed: int, index: int) -> str | None:
    """The stem model ``index`` of a run seeded ``seed`` starts with: every stem in turn, in an
    order the seed shuffles, so a run of N models starts from min(N, stems) different operators
    (and its first models are not an alphabetical slice of them)."""
    if not ruleset.stems:
        return None
    order = ruleset.lead_orders.get(seed)
    if order is None:
        order = list(ruleset.stems)
        random.Random(f"assay-lead:{seed}").shuffle(order)
        if len(ruleset.lead_orders) > 64:
            ruleset.lead_orders.clear()
        ruleset.lead_orders[seed] = order
    return order[index % len(order)]


def generate_graph(ruleset: RuleSet, cfg: GenConfig, chooser: Chooser, lead: str | None = None) -> tuple[Graph, dict]:
    """A graph of up to ``cfg.nodes`` operators, solved (no values yet); ``lead``: the stem of
    the first operator (``lead_stem``)."""
    if not ruleset.ops:
        raise GenerationError("no usable rules")
    b = _Builder(ruleset, cfg, chooser)
    if lead is None or not _place_lead(b, lead):
        _first_tensor(b)
    misses = 0
    while len(b.nodes) < cfg.nodes and misses < 3:
        if b.insert_one():
            misses = 0
        else:
            misses += 1
    if not b.nodes:
        raise GenerationError("could not place any operator")
    shapes = b.solve()
    shapes = _pin_failing(b, shapes)
    g = _to_graph(b, shapes)
    stats = dict(b.stats)
    return g, stats


def _node_ok(b: _Builder, p: _Pending, shapes: dict) -> bool:
    rule = p.info.rule
    if rule.status == "concrete":
        return True
    ins = [shapes[o] for o in p.operands]
    dts = [b.tensors[o].dtype for o in p.operands]
    outs = [shapes[o] for o in p.outputs]
    odts = [b.tensors[o].dtype for o in p.outputs]
    return meta_check(rule, ins, dts, list(p.solved), outs, odts, p.floats) is not False


def _pin_failing(b: _Builder, shapes: dict) -> dict:
    """Meta-check every node at the final solution; pin a failing node's operands and ints to the
    values it was checked at when inserted (its witness), and re-solve."""
    failing = [p for p in b.nodes if p.witness and not _node_ok(b, p, shapes)]
    if not failing:
        return shapes
    z3 = b.z3
    pins = []
    for p in failing:
        wshapes, wints = p.witness
        for o, ws in zip(p.operands, wshapes):
            pins += [f"(= {d} {smt_int(int(v))})" for d, v in zip(b.tensors[o].dims, ws) if not isinstance(d, int)]
        pins += [f"(= {a} {smt_int(int(v))})" for a, v in zip(p.ints, wints) if not isinstance(a, int)]
    b.solver.push()
    b.add(pins)
    if b.solver.check() == z3.sat:
        values = b._values(b.model_values())
        b.solver.pop()
        if b._total(values) <= b.cfg.max_elements:
            b.stats["pinned"] += len(failing)
            return values
    else:
        b.solver.pop()
    return shapes


def drop_node(g: Graph, node_id: str) -> None:
    """Remove a node; its outputs that others read become graph inputs; prune what is left unused."""
    node = g.node(node_id)
    g.nodes.remove(node)
    consumed = set()
    for n in g.nodes:
        consumed.update(n.inputs())
    for o in node.outputs:
        if o in consumed:
            g.tensors[o].role = "input"
        elif o in g.tensors:
            del g.tensors[o]
    g.outputs = [o for o in g.outputs if o not in node.outputs]
    # Leaves only this node read.
    for t in node.inputs():
        if t in g.tensors and t not in consumed and g.tensors[t].role in ("input", "param"):
            del g.tensors[t]
        elif t in g.tensors and t not in consumed and g.tensors[t].role == "value" and t not in g.outputs:
            g.outputs.append(t)  # its producer now feeds nothing: keep it as an output
    # Graph inputs must come before values in tensors order only for readability; order inputs by first use.
    _order_outputs(g)


def _order_outputs(g: Graph) -> None:
    order = {t: i for i, t in enumerate(o for n in g.nodes for o in n.outputs)}
    g.outputs = sorted(set(g.outputs), key=lambda t: order.get(t, -1))


def materialise(g: Graph, seed: int, cfg: GenConfig, max_repairs: int = 4) -> Generated:
    """Run the guard and the value search; drop nodes that fail. Returns the model with its values."""
    import torch

    from fuzz.gen.interpret import build_submodules, submodule_state
    from fuzz.gen.values import search

    guard = {"dropped": 0, "reasons": []}
    nonfinite_drops = 0
    for _ in range(max_repairs + len(g.nodes)):
        try:
            submodules = build_submodules(g)
        except Exception as exc:  # a constructor the rule did not foresee
            bad = next(n for n in g.nodes if n.api == "module")
            for n in g.nodes:
                if n.api == "module":
                    try:
                        build_submodules(_only(g, n))
                    except Exception:
                        bad = n
                        break
            guard["dropped"] += 1
            guard["reasons"].append(f"{bad.name}: constructor: {type(exc).__name__}")
            drop_node(g, bad.id)
            continue
        res = search(g, seed=seed, submodules=submodules, max_rounds=6 if cfg.value_search else 1)
        if res.error is not None and res.structural:
            guard["dropped"] += 1
            guard["reasons"].append(f"{res.error.node.name}: {res.error.message[:120]}")
            drop_node(g, res.error.node.id)
            if not g.nodes:
                raise GenerationError("every operator failed its guard run")
            continue
        if res.error is not None:
            raise GenerationError(str(res.error))
        if not res.finite and res.error is None and res.first_bad and nonfinite_drops < 2 and len(g.nodes) > 1:
            # No values keep this node finite (var over one element, fmod(x, x)...): drop it.
            nonfinite_drops += 1
            guard["nonfinite_dropped"] = guard.get("nonfinite_dropped", 0) + 1
            guard["reasons"].append(f"{g.node(res.first_bad).name}: no finite values found")
            drop_node(g, res.first_bad)
            continue
        if not res.finite:
            failing = _first_failing_after_nan(g, res)
            if failing is not None:
                guard["dropped"] += 1
                guard["reasons"].append(f"{failing.name}: fails after a non-finite value")
                drop_node(g, failing.id)
                continue
        culprit = _nondeterministic_node(g, res)
        if culprit is not None:
            guard["dropped"] += 1
            guard["reasons"].append(f"{culprit.name}: not deterministic or mutates its inputs")
            drop_node(g, culprit.id)
            continue
        params = {p: res.leaves[p] for p in g.params}
        state = {**params, **submodule_state(g, submodules)}
        g.meta["guard"] = guard
        with torch.no_grad():
            leaves = {k: v.detach() for k, v in res.leaves.items()}
        return Generated(g, leaves, state, res.finite, {"value_rounds": res.rounds, "grad_steps": res.grad_steps})
    raise GenerationError("too many failing operators")


def _only(g: Graph, node: Node) -> Graph:
    h = Graph()
    h.nodes = [node]
    return h


def _first_failing_after_nan(g: Graph, res) -> Node | None:
    """The search stops at the first non-finite node; run the rest too, to catch calls that raise."""
    import torch

    from fuzz.gen.interpret import NodeError, check_outputs, run_node

    env = dict(res.leaves)
    try:
        with torch.no_grad():
            for node in g.nodes:
                outs = run_node(node, env, res.submodules)
                check_outputs(g, node, outs)
                env.update(outs)
    except NodeError as exc:
        return exc.node
    return None


def _nondeterministic_node(g: Graph, res) -> Node | None:
    """Run the graph again from the found leaves; the first node whose outputs differ (a random op,
    or one that wrote to its inputs during the first run) is returned."""
    import torch

    from fuzz.gen.interpret import NodeError, run_node

    env = dict(res.leaves)
    try:
        with torch.no_grad():
            for node in g.nodes:
                outs = run_node(node, env, res.submodules)
                env.update(outs)
                for k, v in outs.items():
                    if k not in res.env:
                        return None  # the search stopped at a non-finite node: nothing more to compare
                    before = res.env[k]
                    if before.shape != v.shape or before.dtype != v.dtype:
                        return node
                    if v.dtype.is_floating_point:
                        same = torch.equal(before.nan_to_num(), v.nan_to_num())
                    else:
                        same = torch.equal(before, v)
                    if not same:
                        return node
    except NodeError as exc:
        return exc.node
    return None


def generate(ruleset: RuleSet, cfg: GenConfig, chooser: Chooser, attempts: int = 4, lead: str | None = None) -> Generated:
    """One model: graph, values and stats (``lead``: see ``generate_graph``)."""
    import time

    last = None
    for _ in range(attempts):
        t0 = time.perf_counter()
        try:
            g, stats = generate_graph(ruleset, cfg, chooser, lead)
        except GenerationError as exc:
            last = exc
            continue
        t1 = time.perf_counter()
        seed = chooser.integer(0, (1 << 31) - 1)
        try:
            model = materialise(g, seed, cfg)
        except GenerationError as exc:
            last = exc
            continue
        model.stats.update(stats)
        model.stats.update({"solve_s": t1 - t0, "values_s": time.perf_counter() - t1, "seed": seed})
        n_sym = sum(1 for n in g.nodes if n.kind == "symbolic")
        g.meta.update({"generator": "assay", "symbolic": n_sym, "concrete": len(g.nodes) - n_sym,
                       "finite": model.finite, "value_seed": seed})
        return model
    raise GenerationError(f"could not generate a model: {last}")


def model_rng(seed: int, index: int) -> random.Random:
    """The chooser's random source for model ``index`` of a run seeded ``seed`` (stable across processes)."""
    return random.Random(f"assay-gen:{seed}:{index}")


def generate_model_for_index(ruleset: RuleSet, cfg: GenConfig, seed: int, index: int) -> Generated:
    """Model ``index`` of a run seeded ``seed``: it depends on nothing else (any process, any order),
    and consecutive indices start from different operators (``lead_stem``)."""
    return generate(ruleset, cfg, RandomChooser(model_rng(seed, index)), lead=lead_stem(ruleset, seed, index))
