"""Residual error rate of a rules file: how many symbolic rules are still wrong on fresh calls.

Samples ``--rules-sampled`` symbolic rules (seeded, spread over the file), checks each with
``fuzz.rules.check.check_rule`` on ``--calls`` Z3-chosen calls with dims <= 8 and as many with
dims <= 16 (a seed no inference step uses), and prints a table: checked, wrong (by reason), the
wrong rules. A rule is wrong when torch rejects a call its constraints admit ("error"), its output
shapes differ from the prediction ("mismatch"), or its constraints have no point ("unsat").

    python benchmarks/rules_residual.py --rules corpus/torch-2.13.0/rules.jsonl.gz --rules-sampled 800
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _check(payload):
    from fuzz.rules.check import check_rule
    from fuzz.ir.rule import Rule

    rule_json, calls, seed = json.loads(payload)
    rule = Rule.from_json(rule_json)
    try:
        res = check_rule(rule, n_calls=calls, seed=seed, max_dim=8) + \
            check_rule(rule, n_calls=calls, seed=f"{seed}-16", max_dim=16)
    except Exception as exc:  # noqa: BLE001 - the checker itself failing is reported, not fatal
        return rule.op, "checker", f"{type(exc).__name__}: {str(exc)[:100]}"
    bad = [r for r in res if not r.ok]
    if not bad:
        return rule.op, "", ""
    b = bad[0]
    detail = b.error[:100] if b.reason == "error" else f"{b.env} expected {b.expected} got {b.got}"[:160]
    return rule.op, b.reason, detail


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", default="corpus/torch-2.13.0/rules.jsonl.gz")
    ap.add_argument("--rules-sampled", type=int, default=800)
    ap.add_argument("--calls", type=int, default=2, help="calls per rule at each dim bound (8 and 16)")
    ap.add_argument("--seed", default="residual-1")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    from fuzz.ir.rule import read_rules

    rules = [r for r in read_rules(args.rules) if r.status == "symbolic" and r.outputs]
    rng = random.Random(args.seed)
    sample = rng.sample(rules, min(args.rules_sampled, len(rules)))
    payloads = [json.dumps([r.to_json(), args.calls, args.seed]) for r in sample]
    t0 = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(args.workers, maxtasksperchild=50) as pool:
        results = pool.map(_check, payloads, chunksize=8)
    wall = time.monotonic() - t0
    reasons = Counter(reason for _, reason, _ in results if reason)
    wrong = [(op, reason, detail) for op, reason, detail in results if reason]
    print("| rules file | symbolic rules | checked | calls per rule | wrong | wrong share | by reason | wall |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.rules} | {len(rules)} | {len(sample)} | {2 * args.calls} | {len(wrong)} | "
          f"{100 * len(wrong) / max(1, len(sample)):.2f} % | "
          f"{', '.join(f'{k} {v}' for k, v in sorted(reasons.items())) or '-'} | {wall:.0f} s |")
    for op, reason, detail in wrong:
        print(f"- {op}: {reason}: {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
