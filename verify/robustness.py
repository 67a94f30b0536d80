"""Local robustness, certified radius and VNN-LIB checks on top of ``solver.solve_case``.

Robustness of the decision ``k`` (argmax or argmin of the outputs at the point) in
the L-infinity ball of radius ``eps`` (clipped to the input box) is the property
"no x in the ball has another output at least as good as output k". Each competing
output j is one term of the query (``y_k - y_j <= 0`` for argmax); the terms are
either solved together (``mode="combined"``, the default, one branch-and-bound with
all rows bounded at once) or one query per competing output (``mode="per-class"``).
A counterexample must change the decision strictly, in float64 and in float32.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .errors import VerifyInputError
from .network import Network
from .solver import solve_case, validate


@dataclass
class Result:
    verdict: str                       # 'robust' | 'counterexample' | 'unknown'
    counterexample: list | None = None
    margin: float | None = None        # float64 decision margin at the counterexample (> 0: changed)
    time_s: float = 0.0
    label: int | None = None
    eps: float | None = None
    stats: dict = field(default_factory=dict)

    def to_json(self):
        return {"verdict": self.verdict, "counterexample": self.counterexample, "margin": self.margin,
                "time_s": round(self.time_s, 4), "label": self.label, "eps": self.eps, "stats": self.stats}


def as_network(net_or_module) -> Network:
    if isinstance(net_or_module, Network):
        return net_or_module
    if isinstance(net_or_module, (str, bytes)) or hasattr(net_or_module, "__fspath__"):
        from .load import load_network

        return load_network(net_or_module)
    from .torch_loader import from_torch

    return from_torch(net_or_module)


def decide(y, decision):
    return int(np.argmax(y)) if decision == "argmax" else int(np.argmin(y))


def decision_terms(n_out, label, decision):
    """Terms 'output j is at least as good as the label', one per competing output."""
    terms = []
    for j in range(n_out):
        if j == label:
            continue
        row = np.zeros((1, n_out))
        if decision == "argmax":  # y_label - y_j <= 0
            row[0, label], row[0, j] = 1.0, -1.0
        else:  # y_j - y_label <= 0
            row[0, j], row[0, label] = 1.0, -1.0
        terms.append((row, np.zeros(1)))
    return terms


def decision_margin(y, label, decision):
    """> 0 when the decision at y is not ``label`` (how much another output wins by)."""
    others = np.delete(y, label)
    return float(others.max() - y[label]) if decision == "argmax" else float(y[label] - others.min())


def _ball(net, point, eps, box):
    point = np.asarray(point, dtype=np.float64).reshape(-1)
    if point.shape[0] != net.n_inputs:
        raise VerifyInputError(f"the point has {point.shape[0]} values but the network takes "
                               f"{net.n_inputs} inputs")
    if not np.all(np.isfinite(point)):
        raise VerifyInputError("the point contains NaN or infinite values")
    if eps is None or not np.isfinite(eps) or eps < 0:
        raise VerifyInputError(f"eps must be a finite number >= 0 (got {eps})")
    lo, hi = point - eps, point + eps
    for _ in range(4):  # keep the float box inside the ball: |x - point| <= eps also after rounding
        bad_lo, bad_hi = (point - lo) > eps, (hi - point) > eps
        if not (bad_lo.any() or bad_hi.any()):
            break
        lo = np.where(bad_lo, np.nextafter(lo, np.inf), lo)
        hi = np.where(bad_hi, np.nextafter(hi, -np.inf), hi)
    if box is None and net.input_lo is not None:
        box = (net.input_lo, net.input_hi)
    if box is not None:
        blo = np.broadcast_to(np.asarray(box[0], np.float64), point.shape)
        bhi = np.broadcast_to(np.asarray(box[1], np.float64), point.shape)
        lo, hi = np.maximum(lo, blo), np.minimum(hi, bhi)
        if np.any(lo > hi):
            raise VerifyInputError("the point lies outside the input box (the ball and the box do not meet)")
    return point, lo, hi


def check_robustness(network_or_module, point, eps, decision="argmax", box=None, timeout=60.0,
                     mode="combined", options=None, seed=0):
    """Prove that the decision cannot change in the ball, or return a validated counterexample."""
    if decision not in ("argmax", "argmin"):
        raise VerifyInputError(f"decision must be argmax or argmin (got {decision!r})")
    net = as_network(network_or_module)
    t0 = time.monotonic()
    point, lo, hi = _ball(net, point, eps, box)
    y = net.forward(point)
    label = decide(y, decision)
    terms = decision_terms(net.n_outputs, label, decision)
    rng = np.random.default_rng(seed)
    deadline = t0 + timeout
    if mode == "combined":
        cr = solve_case(net, lo, hi, terms, strict=True, opts=options, rng=rng, deadline=deadline)
        results = [cr]
    elif mode == "per-class":
        results = []
        for t in terms:
            cr = solve_case(net, lo, hi, [t], strict=True, opts=options, rng=rng, deadline=deadline)
            results.append(cr)
            if cr.status == "sat":
                break
    else:
        raise VerifyInputError(f"mode must be combined or per-class (got {mode!r})")
    stats = {"mode": mode, "queries": len(results), "network": net.describe()}
    for key in ("domains", "z3_leaves", "z3_unknown", "max_depth"):
        stats[key] = int(sum(r.stats.get(key, 0) for r in results))
    stats["method"] = ", ".join(sorted({r.stats.get("method", "?") for r in results}))
    el = time.monotonic() - t0
    sat = [r for r in results if r.status == "sat"]
    if sat:
        x = sat[0].x
        assert validate(net, x, lo, hi, terms, strict=True)
        return Result("counterexample", [float(v) for v in x], decision_margin(net.forward(x), label, decision),
                      el, label, float(eps), stats)
    if all(r.status == "unsat" for r in results) and len(results) == (1 if mode == "combined" else len(terms)):
        return Result("robust", None, None, el, label, float(eps), stats)
    # what was learned before the deadline: lower bounds on the decision margin y_k - y_j
    # (argmax; y_j - y_k for argmin) per competing output over the whole ball, and the search state
    learned = {}
    for r in results:
        for key in ("root_unstable_relus", "open_domains_at_timeout", "unresolved_domains"):
            if key in r.stats:
                learned[key] = r.stats[key]
    others = [j for j in range(net.n_outputs) if j != label]
    gaps = [g for r in results for g in r.stats.get("root_term_bounds", [])]
    if len(gaps) == len(others):  # term bound = lower bound of (y_k - y_j) for each competitor j
        learned["margin_lower_bounds"] = {str(j): g for j, g in zip(others, gaps)}
    stats["learned"] = learned
    return Result("unknown", None, None, el, label, float(eps), stats)


def certified_radius(network_or_module, point, decision="argmax", box=None, timeout=60.0,
                     eps_start=None, rel_tol=1e-3, max_checks=30, check_timeout=None, options=None):
    """Bisection for the largest certified eps. Returns a dict with the bracket.

    ``certified``: the largest eps proved robust (0 is proved when the point itself has a
    strict decision); ``violated``: the smallest eps where a validated counterexample was
    found (with it); either is None when none was found. Unknown answers shrink the search
    interval without counting as violations.
    """
    net = as_network(network_or_module)
    t0 = time.monotonic()
    deadline = t0 + timeout
    point, lo0, hi0 = _ball(net, point, 0.0, box)
    if box is None and net.input_lo is not None:
        box = (net.input_lo, net.input_hi)
    span = float(np.max(net.input_hi - net.input_lo)) if net.input_lo is not None else None
    checks = []
    certified, violated, cex, unknown_at = None, None, None, None

    def run(eps):
        left = deadline - time.monotonic()
        ct = left if check_timeout is None else min(left, check_timeout)
        r = check_robustness(net, point, eps, decision, box, timeout=max(0.05, ct), options=options)
        checks.append({"eps": eps, "verdict": r.verdict, "time_s": round(r.time_s, 4)})
        return r

    r0 = run(0.0)
    if r0.verdict == "counterexample":  # tie at the point itself
        return {"certified": None, "violated": 0.0, "counterexample": r0.counterexample, "checks": checks,
                "time_s": time.monotonic() - t0, "label": r0.label, "unknown_at": None, "stopped_early": None}
    if r0.verdict == "robust":
        certified = 0.0
    eps = eps_start or (0.01 * span if span else 0.01)
    # 1. an upper end: cheap attack-only probes at growing radii (a validated counterexample)
    from .attack import attack

    label = r0.label
    terms = decision_terms(net.n_outputs, label, decision)
    probe, rng = eps, np.random.default_rng(0)
    limit = (span * 2 if span else 1e6)
    while violated is None and probe <= limit and time.monotonic() < deadline:
        _, lo, hi = _ball(net, point, probe, box)
        x, _v = attack(net, lo, hi, [(C, d - 1e-9) for C, d in terms], rng=rng, n_random=512, steps=60)
        if validate(net, x, lo, hi, terms, strict=True):
            violated, cex = probe, [float(v) for v in x]
            checks.append({"eps": probe, "verdict": "counterexample", "time_s": None, "by": "attack probe"})
            break
        probe *= 2.0
    # 2. a lower end: grow the certified radius from eps_start while checks prove it
    while time.monotonic() < deadline and len(checks) < max_checks:
        if violated is not None and eps >= violated:
            eps = (violated + (certified or 0.0)) / 2
        r = run(eps)
        if r.verdict == "robust":
            certified = eps
            if (span is not None and eps >= span) or violated is not None:
                break
            eps *= 2.0
        elif r.verdict == "counterexample":
            violated, cex = eps, r.counterexample
            break
        else:
            unknown_at = eps
            break
    hi_search = violated if violated is not None else unknown_at
    if unknown_at is not None and violated is not None:
        hi_search = min(violated, unknown_at)
    while (hi_search is not None and certified is not None and time.monotonic() < deadline
           and len(checks) < max_checks and hi_search - certified > rel_tol * max(hi_search, 1e-12)):
        mid = (certified + hi_search) / 2
        r = run(mid)
        if r.verdict == "robust":
            certified = mid
        elif r.verdict == "counterexample":
            violated, cex, hi_search = mid, r.counterexample, mid
        else:
            unknown_at = mid
            hi_search = mid
    # why the search ended before the bracket reached rel_tol (None: it did, or it was decided)
    stopped = None
    hi_end = violated if unknown_at is None else (unknown_at if violated is None else min(violated, unknown_at))
    tight = (certified is not None and hi_end is not None
             and hi_end - certified <= rel_tol * max(hi_end, 1e-12) and unknown_at is None)
    if not tight:
        if time.monotonic() >= deadline:
            stopped = f"the {timeout:g} s timeout ran out"
        elif len(checks) >= max_checks:
            stopped = f"the limit of {max_checks} checks was reached"
        elif unknown_at is not None:
            stopped = f"the check at eps {unknown_at:g} gave no answer in time"
        elif certified is not None and violated is None and span is not None and certified >= span:
            stopped = None  # the whole input box is certified
        else:
            stopped = "no violated radius was found"
    return {"certified": certified, "violated": violated, "counterexample": cex, "unknown_at": unknown_at,
            "stopped_early": stopped, "checks": checks, "time_s": time.monotonic() - t0, "label": r0.label}


@dataclass
class VnnlibResult:
    result: str                         # 'unsat' | 'sat' | 'timeout' (VNN-COMP terms)
    counterexample: list | None = None
    output: list | None = None
    time_s: float = 0.0
    stats: dict = field(default_factory=dict)

    def to_json(self):
        return {"result": self.result, "counterexample": self.counterexample, "output": self.output,
                "time_s": round(self.time_s, 4), "stats": self.stats}


def check_vnnlib(network_or_module, vnnlib, timeout=60.0, options=None, seed=0):
    """Check a VNN-LIB property: 'unsat' = holds, 'sat' = violated (with a counterexample)."""
    from .vnnlib import parse_vnnlib, read_vnnlib

    net = as_network(network_or_module)
    t0 = time.monotonic()
    if isinstance(vnnlib, str) and "(assert" in vnnlib:
        cases = parse_vnnlib(vnnlib, net.n_inputs, net.n_outputs)
    else:
        cases = read_vnnlib(vnnlib, net.n_inputs, net.n_outputs)
    rng = np.random.default_rng(seed)
    deadline = t0 + timeout
    all_stats, status = [], "unsat"
    for case in cases:
        lo, hi, terms = case
        cr = solve_case(net, lo, hi, terms, strict=False, opts=options, rng=rng, deadline=deadline)
        all_stats.append(cr.stats)
        if cr.status == "sat" and hasattr(case, "inside") and not case.inside(cr.x):
            cr.stats["rejected_on_open_face"] = True  # excluded by a strict input bound
            status = "timeout"
            continue
        if cr.status == "sat":
            x = cr.x
            return VnnlibResult("sat", [float(v) for v in x], [float(v) for v in net.forward(x)],
                                time.monotonic() - t0, {"cases": all_stats})
        if cr.status == "unknown":
            status = "timeout"
    return VnnlibResult(status, None, None, time.monotonic() - t0, {"cases": all_stats})
