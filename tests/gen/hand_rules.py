"""Hand-written rules: fixtures for the generator (the product uses the inferred rules).

Each mimics what inference produces for a signature: a call template, tensor ranks,
output-shape expressions, constraints, dtype combinations, recorded examples.
"""

import json

from fuzz.ir.rule import Rule

F = ["float32", "float64"]


def _key(kind, op, overload, template, ranks):
    return json.dumps([kind, op, overload, template, ranks], sort_keys=True, separators=(",", ":"))


def rule(op, api, template, ranks, outputs, constraints=(), dtypes=None, n_ints=0, overload=None, status="symbolic",
         examples=(), int_ranges=None):
    key = _key(api, op, overload, template, ranks)
    n_out = len(outputs) if outputs else 1
    dtypes = dtypes or [[[d] * len(ranks), [d] * n_out] for d in F]
    stats = {"int_ranges": int_ranges} if int_ranges else {}
    return Rule(key=key, op=op, api=api, overload=overload, template=template, ranks=list(ranks), n_ints=n_ints,
                status=status, dtypes=dtypes, constraints=list(constraints), outputs=outputs,
                examples=list(examples), stats=stats)


def dims(i, r):
    return [f"x{i}_{j}" for j in range(r)]


def fixture_rules() -> list[Rule]:
    rules = []
    for r in range(1, 5):
        rules.append(rule("torch.relu", "function", {"args": [{"X": 0}], "kwargs": {}}, [r], [dims(0, r)]))
        rules.append(rule("aten::log", "aten", {"args": [{"X": 0}], "kwargs": {}}, [r], [dims(0, r)], overload="default"))
        # add with broadcasting, same rank
        rules.append(rule("aten::add", "aten", {"args": [{"X": 0}, {"X": 1}], "kwargs": {}}, [r, r],
                          [[["max", f"x0_{j}", f"x1_{j}"] for j in range(r)]],
                          [["or", ["==", f"x0_{j}", f"x1_{j}"], ["==", f"x0_{j}", 1], ["==", f"x1_{j}", 1]] for j in range(r)],
                          overload="Tensor"))
    rules.append(rule("torch.nn.functional.conv2d", "function",
                      {"args": [{"X": 0}, {"X": 1}], "kwargs": {"stride": [{"A": 0}, {"A": 1}]}}, [4, 4],
                      [["x0_0", "x1_0", ["+", ["//", ["-", "x0_2", "x1_2"], "a0"], 1], ["+", ["//", ["-", "x0_3", "x1_3"], "a1"], 1]]],
                      [["==", "x0_1", "x1_1"], [">=", "x0_2", "x1_2"], [">=", "x0_3", "x1_3"], [">=", "a0", 1], [">=", "a1", 1]],
                      n_ints=2, int_ranges={"a0": [1, 2], "a1": [1, 2]}))
    rules.append(rule("torch.nn.functional.linear", "function", {"args": [{"X": 0}, {"X": 1}], "kwargs": {}}, [2, 2],
                      [["x0_0", "x1_0"]], [["==", "x0_1", "x1_1"]]))
    rules.append(rule("torch.sum", "function", {"args": [{"X": 0}, 1], "kwargs": {}}, [3], [["x0_0", "x0_2"]]))
    rules.append(rule("torch.max", "function", {"args": [{"X": 0}, 1], "kwargs": {}}, [2], [["x0_0"], ["x0_0"]],
                      dtypes=[[["float32"], ["float32", "int64"]]]))
    rules.append(rule("torch.nn.functional.embedding", "function", {"args": [{"X": 0}, {"X": 1}], "kwargs": {}}, [2, 2],
                      [["x0_0", "x0_1", "x1_1"]], dtypes=[[["int64", "float32"], ["float32"]]]))
    conv_ex = {"shapes": [[1, 3, 8, 8]], "dtypes": ["float32"], "ints": [3, 4, 3],
               "out": [{"shape": [1, 4, 6, 6], "dtype": "float32"}]}
    rules.append(rule("torch.nn.Conv2d", "module", {"init": {"args": [{"A": 0}, {"A": 1}, {"A": 2}], "kwargs": {}},
                                                    "args": [{"X": 0}], "kwargs": {}}, [4], None, n_ints=3,
                      status="concrete", dtypes=[[["float32"], ["float32"]]], examples=[conv_ex]))
    # Denied: random and in-place.
    rules.append(rule("torch.nn.functional.dropout", "function", {"args": [{"X": 0}], "kwargs": {}}, [2], [dims(0, 2)]))
    rules.append(rule("torch.Tensor.relu_", "function", {"args": [{"X": 0}], "kwargs": {}}, [2], [dims(0, 2)]))
    return rules
