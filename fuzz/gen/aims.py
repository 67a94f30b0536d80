"""Aiming a model's fresh tensors at their shape targets with Z3's unsat cores (``aims_by_cores``).

Used by ``Builder._solve_aimed`` for the vector and large shape classes (``fuzz.gen.shapes``).
"""

from __future__ import annotations


def aims_by_cores(b, aims: list, ints: list) -> dict | None:
    """(``b``: the ``fuzz.gen.builder.Builder`` solving.) The greedy loop's answer, mostly, in a few checks instead of two or three per fresh tensor.

    Each tensor's target (or, without one, its dims at most ``max_dim``) and each drawn integer
    is asserted behind a Boolean of its own and all are assumed in one check. While that is
    unsatisfiable, the Booleans in Z3's unsat core tell which of them conflict: the one of the
    latest tensor in it is dropped (the greedy loop keeps the earlier tensors' targets first,
    and the integers after every tensor), a dropped target giving way to its tensor's
    ``max_dim`` cap. None when the model found is over its element budget or Z3 gives no
    answer (the greedy loop decides)."""
    from z3.z3consts import Z3_L_FALSE, Z3_L_TRUE

    z3 = b.z3

    def cap(dims):
        return [f"(<= {d} {b.cfg.max_dim})" for d in dims]

    every = [(k, aim or cap(dims), bool(aim), dims) for k, (aim, dims) in enumerate(aims)]
    every += [(len(aims) + j, aim, False, []) for j, aim in enumerate(ints)]
    b.solver.push()
    try:
        rank, caps, text = {}, {}, []   # by the Booleans' AST ids (printing a term is slow)

        def guard(cons: list, order: int):
            name = b.fresh("aim")
            text.append(f"(declare-const {name} Bool)(assert (=> {name} (and true {' '.join(cons)})))")
            flag = z3.Bool(name, b.ctx)
            rank[flag.get_id()] = order
            return flag

        active = []
        for order, cons, aimed, dims in every:
            flag = guard(cons, order)
            active.append(flag)
            if aimed:
                caps[flag.get_id()] = (cap(dims), order)
        b.solver.from_string(b._text([]) + "".join(text))
        for _ in range(len(every) * 2 + 1):
            verdict = b.check(active)
            if verdict == Z3_L_TRUE:
                values = b.values_at(b.model_values())
                return values if b.total_elements(values) <= b.shape.max_elements else None
            if verdict != Z3_L_FALSE:  # unknown: out of its resource limit
                return None
            core = [c.get_id() for c in b.solver.unsat_core()]
            core = [i for i in core if i in rank]
            if not core:
                return None
            drop = max(core, key=rank.__getitem__)
            active = [f for f in active if f.get_id() != drop]
            if drop in caps:
                cons, order = caps.pop(drop)
                text = []
                active.append(guard(cons, order))
                b.solver.from_string("".join(text))
        return None
    finally:
        b.solver.pop()
