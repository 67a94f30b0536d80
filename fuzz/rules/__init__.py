"""Rule inference: from trace records to per-signature ``Rule``s (see docs/inference.md).

- ``synth``: enumerative synthesis of output-shape expressions (numpy, observational equivalence);
- ``constraints``: candidate predicates and a greedy set cover over the invalid records;
- ``signature``: one signature (and its specialised variants) -> ``Rule``s;
- ``run``: the corpus driver (held-out split, process pool, validation, stats);
- ``check``: re-checks rules against fresh calls on meta tensors (Z3-chosen values).
"""
