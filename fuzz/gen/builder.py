"""The Z3 graph builder: grows one model an operator at a time (see ``fuzz.gen.generate``).

Tensors keep their dims as solver constants; inserting an operator adds its rule's constraints
and output-shape expressions (``RuleInfo.smt_templates``) under a solver scope, kept only if the
solver stays satisfiable and a call on meta/CPU tensors (``fuzz.gen.callcheck``) agrees with the
rule. ``Builder.solve`` then picks concrete dims under randomised bounds and the size bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fuzz.gen.callcheck import meta_check
from fuzz.gen.chooser import Chooser
from fuzz.gen.config import FLOAT_DTYPES, GenConfig, GenerationError
from fuzz.gen.aims import aims_by_cores
from fuzz.gen.loop_bounds import loop_bounds
from fuzz.gen.ruleset import PREFERRING_THEMES, RuleInfo, RuleSet, cast_ops
from fuzz.gen.shapes import shape_class, targets
from fuzz.gen.solver import TextSolver, smt_term
from fuzz.ir.dsl import smt_int


# The Boolean constant under which every dim is >= 1 in a model that may hold a zero-size dim
NONZERO = "nonzero_dims"


def _example_dtypes(ex: dict) -> list:
    """The dtypes of a recorded call: its operands' and its outputs'."""
    return [*ex["dtypes"], *(o["dtype"] for o in ex["out"])]


@dataclass
class SymbolicTensor:
    """A tensor of the model being built; a dim is a solver constant's name or an int."""

    name: str
    dims: list                 # names of Z3 integer constants (str) or python ints
    dtype: str
    role: str                  # input | param | value
    rank: int = 0

    def __post_init__(self):
        self.rank = len(self.dims)


@dataclass
class PendingNode:
    """An operator call placed in the model, waiting for the final solution."""

    id: str
    info: RuleInfo
    operands: list             # tensor name per X slot
    ints: list                 # Z3 constant names (str) or python ints per A slot
    outputs: list              # tensor names
    kind: str
    witness: tuple | None = None  # (operand shapes, ints) at which a meta-device call agreed with the rule
    unchecked: bool = False       # placed without that call (``Builder.check_on_insert`` off): checked at the end only
    solved: list | None = None    # the integers' values in the final solution
    floats: list = field(default_factory=list)  # values of the template's {"F": m} placeholders


class Builder(TextSolver):
    """One model under construction: its tensors (dims as solver constants or ints), its pending
    operator calls, and the choices that grow it (``insert_one``) and solve it (``solve``)."""

    def __init__(self, ruleset: RuleSet, cfg: GenConfig, chooser: Chooser):
        super().__init__(seed=chooser.integer(0, 1 << 16), rlimit=cfg.solver_rlimit)
        self.rs = ruleset
        self.cfg = cfg
        self.ch = chooser
        self.tensors: dict[str, SymbolicTensor] = {}
        self.nodes: list[PendingNode] = []
        self.used_ops: set[str] = set()
        self.used_stems: set[str] = set()
        self.dim_vars: list = []      # free dims of fresh tensors (targets of randomised bounds)
        self.fresh_shapes: list = []  # the free dims of each fresh tensor (targets of the shape class)
        self.shape = shape_class(cfg.policy.shape, cfg.max_dim, cfg.max_elements)
        self.int_vars: list = []      # (var, lo, hi)
        self.stats = {"tries": 0, "unsat": 0, "forward": 0, "backward": 0, "symbolic_ints": 0, "meta_rejected": 0,
                      "pinned": 0, "sources": 0}
        self._last_in_dtypes: list = []
        self._last_floats: list = []   # float values chosen for the node being inserted
        # Meta-check each symbolic call when it is placed, at the solver's model then (its witness,
        # which ``generate._pin_failing`` pins a call to if it fails at the final solution). Off, a
        # call is checked at the final solution only (``fuzz.gen.generate.generate_graph``).
        self.check_on_insert = True
        # --empty-dims one: dims may be 0, but only once the final solution lifts this assumption
        # for one input dim (fuzz.gen.empty_dims); growth and solving see every dim >= 1 as before
        self.zero_dims = cfg.policy.empty_dims == "one"
        self.zero_result = {"placed": False}  # what fuzz.gen.empty_dims.zero_one_dim did
        if self.zero_dims:
            self.assume(NONZERO)

    def lower_bound(self, v: str) -> list:
        """A dim's lower bound: 1, or with ``zero_dims`` 1 while ``NONZERO`` is assumed, else 0."""
        if self.zero_dims:
            return [f"(>= {v} 0)", f"(=> {NONZERO} (>= {v} 1))"]
        return [f"(>= {v} 1)"]

    def pick_dtypes(self, options: list, dtypes_of=lambda c: [*c[0], *c[1]]):
        """One of ``options`` (dtype combos, or recorded calls with ``dtypes_of``): under an integer
        or complex dtype theme mostly one that holds the theme's dtype, under ``mixed`` mostly one that mixes
        dtypes (a cast); otherwise uniformly, as before themes."""
        theme = self.cfg.policy.dtype
        if theme in PREFERRING_THEMES:
            pref = [o for o in options if theme in dtypes_of(o)]
        elif theme == "mixed":
            pref = [o for o in options if len(set(dtypes_of(o))) > 1]
        else:
            return self.ch.choice(options)
        if pref and self.ch.chance(0.8):
            return self.ch.choice(pref)
        return self.ch.choice(options)

    def _pick_floats(self, info: RuleInfo) -> list:
        """Values for a symbolic rule's {"F": m} placeholders: one of the float tuples it saw valid
        (``fuzz.rules.check.pick_floats`` is the same draw for the probes)."""
        return list(self.ch.choice(info.rule.floats)) if info.rule.floats else []

    # -- tensors ------------------------------------------------------------
    def new_tensor(self, rank: int, dtype: str, role: str, dims: list | None = None) -> tuple[SymbolicTensor, list]:
        cons = []
        if dims is None:
            dims = []
            for _ in range(rank):
                v = self.var("d")
                dims.append(v)
                self.dim_vars.append(v)
                cons += [*self.lower_bound(v), f"(<= {v} {self.shape.dim_max})"]
            if dims:
                self.fresh_shapes.append(list(dims))
        t = SymbolicTensor(self.fresh({"input": "x", "param": "w"}.get(role, "t")), list(dims), dtype, role)
        return t, cons

    def candidates(self, rank: int, dtype: str) -> list[str]:
        return [n for n, t in self.tensors.items() if t.rank == rank and t.dtype == dtype]

    def try_add(self, constraints: list) -> bool:
        """Add ``constraints`` in a new solver scope if they keep it satisfiable (False otherwise)."""
        self.stats["tries"] += 1
        if self.push_if_sat(constraints):
            return True
        self.stats["unsat"] += 1
        return False

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
        if self.cfg.policy.dtype == "mixed" and self.ch.chance(0.4):
            casts = fwd_ops & cast_ops(self.rs)  # the mixed theme: often a cast between dtypes next
            fwd_ops = casts or fwd_ops
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
                env[f"x{i}_{j}"] = smt_term(d)
        for k, a in enumerate(ints):
            env[f"a{k}"] = smt_term(a)
        cons_t, outs_t = info.smt_templates()
        cons = [c.format_map(env) for c in cons_t]
        if self.zero_dims:  # an operand dim's ``>= 1`` holds only while NONZERO is assumed
            cons = [f"(=> {NONZERO} {c})" if i in info.dim_floors else c for i, c in enumerate(cons)]
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
            v = self.var("a")
            ints.append(v)
            cons += [f"(>= {v} {smt_int(lo)})", f"(<= {v} {smt_int(hi)})"]
            self.int_vars.append((v, lo, hi))
        return ints, cons

    def _outputs(self, out_dims: list, combo_out: list) -> tuple[list[SymbolicTensor], list]:
        tensors, cons = [], []
        for dims, dt in zip(out_dims, combo_out):
            vars_ = []
            for text, same in dims:
                if same is not None:
                    vars_.append(same)  # the dim of an operand (elementwise ops): already bounded
                    continue
                v = self.var("o")
                vars_.append(v)
                cons += [f"(= {v} {text})", *self.lower_bound(v), f"(<= {v} {self.shape.out_max})"]
            t, _ = self.new_tensor(len(vars_), dt, "value", dims=vars_)
            tensors.append(t)
        return tensors, cons

    # -- forward ------------------------------------------------------------
    def _bind_operands(self, info: RuleInfo, in_dtypes: list, fixed_shapes: list | None, fresh: bool = False,
                       single: bool = False, on: list | None = None):
        """Operand per slot: existing tensor names (at least one; exactly one with ``single``) or new
        leaves (all of them with ``fresh``). ``on``: tensors that must be operands, bound in order to
        the first free slots that take them (the first one at least; ``fuzz.gen.blocks``).
        Returns (operands, new tensors, cons) or None."""
        ranks = info.rule.ranks
        operands: list = [None] * len(ranks)
        if on and not fresh:
            for k, name in enumerate(on if not single else on[:1]):
                t = self.tensors[name]
                free = [s for s in range(len(ranks)) if operands[s] is None and (ranks[s], in_dtypes[s]) == (t.rank, t.dtype)]
                if not free:
                    if k == 0:
                        return None
                    continue
                operands[free[0]] = name
        elif not fresh:
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

    def insert_forward(self, info: RuleInfo, on: list | None = None) -> bool:
        """Place ``info`` reading existing tensors (``on``: these, the first one at least)."""
        existing = {(t.rank, t.dtype) for t in (self.tensors.values() if not on else [self.tensors[on[0]]])}
        combos = [c for c in info.combos if any((info.rule.ranks[s], c[0][s]) in existing for s in range(len(info.rule.ranks)))]
        if not combos:
            return False
        if info.rule.status == "concrete":
            exs = [e for e in info.examples if any((info.rule.ranks[s], e["dtypes"][s]) in existing for s in range(len(e["dtypes"])))]
            if not exs:
                return False
            ex = self.pick_dtypes(exs, _example_dtypes)
            self._last_floats = list(ex.get("floats", []))
            # In vector/large models a recorded call never pins an existing tensor to its (small)
            # recorded shape, which would pin every tensor tied to it: it enters as a source.
            bound = self._bind_operands(info, ex["dtypes"], ex["shapes"], on=on) if self.shape.name == "small" else None
            if bound is None or not self.try_add(bound[2]):
                # No existing tensor can take the recorded shape (its dims are already fixed
                # otherwise): sometimes the call enters on new inputs of its own, a source whose
                # outputs later operators can read. Without this, concrete operators (CTC loss,
                # im2col, LSTM, lstsq...) would almost never appear.
                if on or not self.ch.chance(self.cfg.concrete_source_prob):
                    return False
                operands, new, _ = self._bind_operands(info, ex["dtypes"], ex["shapes"], fresh=True)
                self.stats["sources"] += 1
            else:
                operands, new, _ = bound
            outs = [SymbolicTensor(self.fresh("t"), list(o["shape"]), o["dtype"], "value") for o in ex["out"]]
            self._commit(info, operands, new, list(ex["ints"]), outs, "concrete")
            return True
        in_dt, out_dt = self.pick_dtypes(combos)
        self._last_in_dtypes = list(in_dt)
        self._last_floats = self._pick_floats(info)
        bound = self._bind_operands(info, in_dt, None, on=on)
        if bound is None:
            return False
        if self._try_bound(info, bound, out_dt):
            return True
        # Two existing tensors rarely fit together (slice_scatter, a matmul's inner dims): try
        # again with one existing operand, then sometimes as a source on new inputs only.
        if sum(1 for o in bound[0] if o in self.tensors) > 1:
            if self._try_bound(info, self._bind_operands(info, in_dt, None, single=True, on=on), out_dt):
                return True
        if not on and self.ch.chance(self.cfg.symbolic_source_prob):
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
            cons += rc + oc + loop_bounds(info.rule.op, operand_dims)
            if extra is not None:
                cons += extra(outs)
            if self.try_add(cons):
                witness = self._witness(info, operand_dims, ints, outs, out_dt) if self.check_on_insert else None
                if witness is False:
                    self.solver.pop()
                    self.stats["meta_rejected"] += 1
                    continue
                commit(ints, outs)
                placed = self.nodes[0 if extra is not None else -1]
                placed.witness, placed.unchecked = witness, not self.check_on_insert
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
        if info.rule.status == "concrete" and self.shape.name != "small":
            return False  # its recorded output would pin the replaced input (see insert_forward)
        target, j = self.ch.choice(targets)
        if info.rule.status == "concrete":
            exs = [e for e in info.examples if len(e["out"][j]["shape"]) == target.rank and e["out"][j]["dtype"] == target.dtype]
            if not exs:
                return False
            ex = self.pick_dtypes(exs, _example_dtypes)
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
            outs = [SymbolicTensor(self.fresh("t"), list(o["shape"]), o["dtype"], "value") for o in ex["out"]]
            self._commit_backward(info, new, list(ex["ints"]), outs, target, j, "concrete")
            return True
        combos = [c for c in info.combos if c[1][j] == target.dtype and len(info.rule.outputs[j]) == target.rank]
        if not combos:
            return False
        in_dt, out_dt = self.pick_dtypes(combos)
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
            return [f"(= {smt_term(a)} {smt_term(b)})" for a, b in zip(outs[j].dims, target.dims)]

        return self._try_ints(info, operand_dims, cons0,
                              lambda ints, outs: self._commit_backward(info, new, ints, outs, target, j, "symbolic"),
                              out_dt, extra=tie)

    # -- commit -------------------------------------------------------------
    def _commit(self, info, operands, new, ints, outs, kind):
        for t in new:
            self.tensors[t.name] = t
        for t in outs:
            self.tensors[t.name] = t
        self.nodes.append(PendingNode(self.fresh("n"), info, operands, ints, [t.name for t in outs], kind,
                                   floats=list(self._last_floats)))

    def _commit_backward(self, info, new, ints, outs, target, j, kind):
        for t in new:
            self.tensors[t.name] = t
        # The j-th output *is* the target input from now on.
        outs[j] = target
        target.role = "value"
        for t in outs:
            self.tensors[t.name] = t
        self.nodes.insert(0, PendingNode(self.fresh("n"), info, [t.name for t in new], ints, [t.name for t in outs], kind,
                                      floats=list(self._last_floats)))

    # -- solving ------------------------------------------------------------
    def solve(self) -> dict:
        """Concrete values of every z3 term, with randomised bounds and the total-size bound."""
        if self.shape.name != "small":
            return self._solve_aimed()
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
            if self.sat():
                model = self.model_values()
                self.solver.pop()
                values = self.values_at(model)
                total = self.total_elements(values)
                if total <= self.shape.max_elements:
                    return values
                cap = max(1, cap // 2)
                soft = [s for s in soft if self.ch.chance(0.3)]
                continue
            self.solver.pop()
            soft = soft[: len(soft) // 2]
            if not soft and cap >= self.cfg.max_dim:
                break
        return self._solve_plain()

    def _solve_plain(self) -> dict:
        """The model without soft constraints (the last resort of both solves)."""
        if not self.sat():
            raise GenerationError("Z3 gave up on the final model (resource limit); try another seed")
        values = self.values_at(self.model_values())
        if self.total_elements(values) > self.shape.max_elements:
            raise GenerationError("cannot fit the model in max_elements")
        return values

    def _solve_aimed(self) -> dict:
        """``solve`` for the vector and large shape classes (``fuzz.gen.shapes``): each fresh tensor's
        targets are kept greedily, one tensor at a time, if the solver stays satisfiable with them (one
        unsatisfiable target then costs only its own tensor, whose dims then stay at most ``max_dim``
        if they can: a free dim left to Z3 may take any value up to the class's bound). A target that
        takes the model over its element budget is dropped the same way; if the model is still over
        (dims no target holds), the dims are capped at half and the targets thinned, as in ``solve``."""
        shared: dict = {}
        aims = [(targets(self.shape, self.ch, dims, shared), dims) for dims in self.fresh_shapes]
        ints = [[f"(= {v} {smt_int(self.ch.integer(lo, hi))})"] for v, lo, hi in self.int_vars if self.ch.chance(0.5)]
        values = aims_by_cores(self, aims, ints)
        if values is not None:
            return values
        cap = self.shape.dim_max
        for _ in range(6):
            depth = 0
            if cap < self.shape.dim_max and self.push_if_sat([f"(<= {d} {cap})" for d in self.dim_vars]):
                depth += 1
            for k, (aim, dims) in enumerate(aims):
                if aim and self.push_if_sat(aim):
                    if self._within_budget([d for _, later in aims[k + 1:] for d in later]):
                        depth += 1
                        continue
                    self.solver.pop()  # this tensor's target takes the model over its budget
                if self.push_if_sat([f"(<= {d} {self.cfg.max_dim})" for d in dims]):
                    depth += 1
            for aim in ints:
                depth += self.push_if_sat(aim)
            values = self.values_at(self.model_values()) if self.sat() else None
            for _ in range(depth):
                self.solver.pop()
            if values is not None and self.total_elements(values) <= self.shape.max_elements:
                return values
            cap = max(1, cap // 2)
            aims = [(aim if self.ch.chance(0.5) else [], dims) for aim, dims in aims]
        small = self.push_if_sat([f"(<= {d} {self.cfg.max_dim})" for d in self.dim_vars])
        try:
            return self._solve_plain()
        finally:
            if small:
                self.solver.pop()

    def _within_budget(self, later: list) -> bool:
        """Whether the current scope's model fits the element budget, the dims of tensors still to be
        aimed (``later``) taken at most ``max_dim`` where they can be (else Z3 may take any value)."""
        small = bool(later) and self.push_if_sat([f"(<= {d} {self.cfg.max_dim})" for d in later])
        if not small and not self.sat():
            return False
        total = self.total_elements(self.values_at(self.model_values()))
        if small:
            self.solver.pop()
        return total <= self.shape.max_elements

    def values_at(self, vals: dict) -> dict:
        """Every tensor's shape (and every node's integers) at a model (``model_values``)."""
        out = {}
        for t in self.tensors.values():
            out[t.name] = [self.value(vals, d) for d in t.dims]
        for n in self.nodes:
            n.solved = [self.value(vals, a) for a in n.ints]
        return out

    def call_agrees(self, p: PendingNode, shapes: dict) -> bool:
        """Whether ``p``'s call agrees with its rule at ``shapes`` (and its ``solved`` ints): a meta
        check (``fuzz.gen.callcheck``); a recorded (concrete) call always does."""
        rule = p.info.rule
        if rule.status == "concrete":
            return True
        ins = [shapes[o] for o in p.operands]
        dts = [self.tensors[o].dtype for o in p.operands]
        outs = [shapes[o] for o in p.outputs]
        odts = [self.tensors[o].dtype for o in p.outputs]
        return meta_check(rule, ins, dts, list(p.solved), outs, odts, p.floats) is not False

    @staticmethod
    def total_elements(values: dict) -> int:
        return sum(math.prod(s) for s in values.values())
