"""The generator on fixture rules: validity, determinism, JSON, size bound, guard, CLI."""

import json
import os
import subprocess
import sys

import pytest
import torch

from fuzz.gen import program
from fuzz.gen.chooser import RandomChooser
from fuzz.gen.config import GenConfig, GenerationError
from fuzz.gen.deny import deny_reason
from fuzz.gen.generate import generate, generate_model_for_index
from fuzz.gen.materialise import materialise
from fuzz.gen.ruleset import RuleSet, load_ruleset
from fuzz.ir.graph import Graph, Node
from fuzz.ir.rule import Rule, write_rules

from hand_rules import fixture_rules, rule

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def ruleset():
    return RuleSet(fixture_rules())


def test_deny_list_and_filters(ruleset):
    assert "torch.nn.functional.dropout" not in ruleset.ops  # random
    assert "torch.Tensor.relu_" not in ruleset.ops            # in-place
    assert deny_reason(rule("aten::add", "aten", {"args": [{"X": 0}, {"X": 1}], "kwargs": {}}, [1, 1],
                            [["x0_0"]], overload="out")) == "out= variant"
    assert deny_reason(rule("aten::nonzero", "aten", {"args": [{"X": 0}], "kwargs": {}}, [1], [["x0_0"]],
                            overload="default")) == "deny-list"
    assert deny_reason(rule("aten::add_", "aten", {"args": [{"X": 0}, {"X": 1}], "kwargs": {}}, [1, 1], [["x0_0"]],
                            overload="Tensor")) == "in-place"
    assert deny_reason(rule("aten::relu", "aten", {"args": [{"X": 0}], "kwargs": {}}, [1], [["x0_0"]],
                            overload="default")) is None
    # an internal tracing op: a gradient flows through it in eager, not in AOT autograd
    assert deny_reason(rule("aten::lift_fresh", "aten", {"args": [{"X": 0}], "kwargs": {}}, [1], [["x0_0"]],
                            overload="default")) == "deny-list"


def test_models_are_valid_finite_and_json_roundtrip(ruleset):
    for seed in range(12):
        m = generate(ruleset, GenConfig(nodes=8), RandomChooser(seed))
        g = m.graph
        assert 1 <= len(g.nodes) <= 8
        assert Graph.loads(g.dumps()).to_json() == g.to_json()
        data = json.loads(g.dumps())
        assert all(n["kind"] in ("symbolic", "concrete") and n["op"] for n in data["nodes"])
        outs = program.run_eager(program.build_module(g, m.state), m.inputs)
        assert [list(o.shape) for o in outs] == [g.tensors[o].shape for o in g.outputs]
        assert m.finite and all(torch.isfinite(o).all() for o in outs if o.dtype.is_floating_point)


def test_a_call_failing_at_the_end_regrows_the_graph_as_if_checked_throughout(monkeypatch):
    """Graphs grow without a meta check per placed call; one whose call then disagrees with its
    rule at the final solution is grown again from the same draws with the checks on: the model
    is the one a generator checking every placement makes (a chooser that cannot replay)."""
    from fuzz.gen.policy import Shares

    shipped = load_ruleset()
    regrown = None
    for i in range(200):
        m = generate_model_for_index(shipped, GenConfig(nodes=5), 0, i, Shares())
        if m.stats.get("regrown"):
            regrown = (i, m)
            break
    assert regrown is not None, "no model of the first 200 needed its graph regrown"
    i, fast = regrown
    monkeypatch.setattr(RandomChooser, "snapshot", lambda self: None)
    checked = generate_model_for_index(shipped, GenConfig(nodes=5), 0, i, Shares())
    assert "regrown" not in checked.stats
    assert checked.graph.dumps() == fast.graph.dumps()
    assert all(torch.equal(checked.leaves[k], fast.leaves[k]) for k in fast.leaves)


def test_text_solver_checks_under_its_assumptions_and_extra_flags():
    """``TextSolver.check`` calls Z3 directly: the scopes hold under ``assumptions`` and the flags
    given; a check out of its resource limit is unknown, which ``sat`` and ``push_if_sat`` treat
    as unsatisfiable."""
    from z3.z3consts import Z3_L_FALSE, Z3_L_TRUE, Z3_L_UNDEF

    from fuzz.gen.solver import TextSolver

    s = TextSolver(seed=1, rlimit=10**7)
    d = s.var("d")
    s.add([f"(>= {d} 1)", f"(<= {d} 8)"])
    small = s.assume("small")
    s.solver.from_string(f"(declare-const big Bool)(assert (=> small (<= {d} 2)))(assert (=> big (>= {d} 5)))")
    big = s.z3.Bool("big", s.ctx)
    assert s.check() == Z3_L_TRUE and s.model_values()[d] <= 2
    assert s.check([big]) == Z3_L_FALSE and s.sat()
    s.assumptions.remove(small)
    assert s.check([big]) == Z3_L_TRUE and s.model_values()[d] >= 5
    assert not s.push_if_sat([f"(> {d} 8)"]) and s.sat()
    tight = TextSolver(seed=1, rlimit=1)
    x, y = tight.var("x"), tight.var("y")
    tight.add([f"(= (* {x} {x} {y}) 1234567)", f"(> {y} 1)"])
    assert tight.check() == Z3_L_UNDEF and not tight.sat()


def test_same_seed_same_graph(ruleset):
    a = generate_model_for_index(ruleset, GenConfig(nodes=8), 7, 3)
    b = generate_model_for_index(ruleset, GenConfig(nodes=8), 7, 3)
    c = generate_model_for_index(ruleset, GenConfig(nodes=8), 7, 4)
    assert a.graph.dumps() == b.graph.dumps()
    assert all(torch.equal(a.leaves[k], b.leaves[k]) for k in a.leaves)
    assert a.graph.dumps() != c.graph.dumps()


def test_solver_resource_limit_bounds_every_check(ruleset):
    """Every Z3 check runs under GenConfig.solver_rlimit (deterministic, unlike a timeout): a check
    that hits it counts as unsat, so one nonlinear rule cannot stall generation. With a limit no
    check can meet, nothing is ever added and generation fails cleanly; with the default it works."""
    with pytest.raises(GenerationError):
        generate(ruleset, GenConfig(nodes=4, solver_rlimit=1), RandomChooser(0))
    assert generate(ruleset, GenConfig(nodes=4), RandomChooser(0)).graph.nodes


def test_total_size_bound_holds(ruleset):
    for seed in range(8):
        cfg = GenConfig(nodes=8, max_elements=3000, max_dim=64)
        m = generate(ruleset, cfg, RandomChooser(seed))
        total = sum(t.numel for t in m.graph.tensors.values())
        assert total <= 3000
    # and with a generous bound, larger models do appear
    sizes = [sum(t.numel for t in generate(ruleset, GenConfig(nodes=8, max_dim=64), RandomChooser(s)).graph.tensors.values())
             for s in range(4)]
    assert max(sizes) > 3000


def test_wrong_rule_is_caught_at_insertion_and_by_the_guard():
    bad = rule("torch.relu", "function", {"args": [{"X": 0}], "kwargs": {}}, [2], [["x0_0", ["+", "x0_1", 1]]])
    ok = rule("aten::log", "aten", {"args": [{"X": 0}], "kwargs": {}}, [2], [["x0_0", "x0_1"]], overload="default")
    rs = RuleSet([bad, ok])
    rejected = 0
    for seed in range(4):
        m = generate(rs, GenConfig(nodes=4), RandomChooser(seed))
        rejected += m.stats["meta_rejected"]
        assert "torch.relu" not in m.graph.ops()
    assert rejected > 0
    # A graph whose predicted shape is wrong anyway (as if the checks had been fooled): the guard
    # run drops that node, its output becomes a graph input, and the rest still runs.
    g = Graph()
    x = g.add_tensor([2, 3], "float32", "input", name="x_0")
    r = g.add_tensor([2, 4], "float32", name="relu_1")
    y = g.add_tensor([2, 4], "float32", name="log_2")
    g.add_node(Node(id="n0", op="torch.relu", api="function", args=[{"ref": x}], kwargs={}, outputs=[r]))
    g.add_node(Node(id="n1", op="aten::log", api="aten", overload="default", args=[{"ref": r}], kwargs={}, outputs=[y]))
    g.outputs = [y]
    model = materialise(g, seed=0, cfg=GenConfig())
    assert model.graph.meta["guard"]["dropped"] == 1 and model.graph.ops() == ["aten::log"]
    assert model.graph.inputs == ["relu_1"]
    program.run_eager(program.build_module(model.graph, model.state), model.inputs)


def test_cli_gen_contract(tmp_path, assay):
    rules = tmp_path / "rules.jsonl.gz"
    write_rules(rules, fixture_rules())
    out = tmp_path / "models"
    cmd = assay + ["gen", "--count", "2", "--nodes", "5", "--seed", "4", "--out", str(out), "--rules", str(rules), "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert len(summary["models"]) == 2
    for i in range(2):
        d = out / str(i)
        assert sorted(os.listdir(d)) == sorted(program.PROGRAM_FILES)
        data = json.loads((d / "graph.json").read_text())
        assert data["nodes"] and all(n["kind"] in ("symbolic", "concrete") and "op" in n for n in data["nodes"])
    run = subprocess.run([sys.executable, str(out / "1" / "program.py")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "outputs:" in run.stdout
    # Same seed in another process: the same graph.json, byte for byte.
    again = subprocess.run(cmd[:-3] + ["--out", str(tmp_path / "again"), "--rules", str(rules)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    for i in range(2):
        assert (tmp_path / "again" / str(i) / "graph.json").read_text() == (out / str(i) / "graph.json").read_text()


@pytest.mark.parametrize("bad", [["--count", "0"], ["--rules", "MISSING"], ["--dtypes", "float7"], ["--nodes", "-1"]])
def test_cli_gen_bad_input_is_one_line(tmp_path, capsys, bad):
    from fuzz.cli import main

    rules = tmp_path / "rules.jsonl.gz"
    write_rules(rules, fixture_rules())
    bad = [str(tmp_path / "missing.gz") if b == "MISSING" else b for b in bad]
    code = main(["gen", "--out", str(tmp_path / "x"), "--rules", str(rules)] + bad)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("assay: error:")


def test_one_call_cannot_take_the_generators_memory():
    """torch.combinations(x[12], r=8) returns 75,582 x 8 values but builds a 12**8 grid first;
    under the per-call headroom it fails fast instead of allocating 4+ GB, and the limit is
    restored afterwards."""
    import resource

    import torch

    from fuzz.gen.interpret import CALL_HEADROOM_BYTES
    from fuzz.isolation import address_space_headroom

    before = resource.getrlimit(resource.RLIMIT_AS)
    with pytest.raises(RuntimeError):
        with address_space_headroom(CALL_HEADROOM_BYTES):
            torch.combinations(torch.arange(12.0), r=8, with_replacement=True)
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    with address_space_headroom(CALL_HEADROOM_BYTES):  # an ordinary call is unaffected
        assert torch.combinations(torch.arange(5.0), r=2).shape == (10, 2)


def test_load_ruleset_reads_and_prepares_once_per_arguments(tmp_path):
    from fuzz.errors import AssayError

    path = tmp_path / "rules.jsonl.gz"
    write_rules(path, fixture_rules())
    rs = load_ruleset(path)
    assert load_ruleset(str(path)) is rs  # one RuleSet per process, the path as str or Path
    assert (rs.n_given, rs.n_rules, rs.ops) == (20, 18, RuleSet(fixture_rules()).ops)
    floats = load_ruleset(path, dtypes=("float32",))
    assert floats is not rs and floats is load_ruleset(path, dtypes=["float32"]) and floats.ops
    assert all(set(c[0]) | set(c[1]) <= {"float32"} for infos in floats.by_op.values() for i in infos for c in i.combos)
    assert load_ruleset(path, ops={"relu"}).ops == ["torch.relu"]
    with pytest.raises(AssayError, match="no rules at"):
        load_ruleset(tmp_path / "missing.gz")


def test_fixture_rules_are_rules():
    for r in fixture_rules():
        assert Rule.from_json(json.loads(json.dumps(r.to_json()))) == r


def test_cli_never_mixes_runs_and_empty_dtypes_is_an_error(tmp_path, run_assay):
    out = tmp_path / "models"
    res = run_assay("gen", "--count", "2", "--nodes", "3", "--out", out, "--json", timeout=300)
    assert res.returncode == 0, res.stderr
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for argv, words in ((("--out", out), "already holds 2 models"), (("--dtypes", "", "--out", tmp_path / "b"), "--dtypes"),
                        (("--count", "0", "--out", tmp_path / "c"), "--count")):
        res = run_assay("gen", *argv, timeout=300)
        assert res.returncode == 2 and words in res.stderr, (argv, res.stderr)
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_grid_sampler_enums_stay_in_range_and_the_mutant_would_read_uninitialised_memory():
    """A recorded mutant ``grid_sampler_3d(..., interpolation_mode=-1)`` runs in eager but returns
    memory the kernel never wrote; the generator keeps only valid enums (``deny.UNCHECKED_ENUMS``)."""
    rs = load_ruleset()
    seen = 0
    for op, infos in rs.by_op.items():
        if "grid_sampler" not in op:
            continue
        for info in infos:
            args = info.rule.template.get("args", [])
            slots = [a["A"] for a in args[2:4] if isinstance(a, dict) and "A" in a]
            for k in slots:
                seen += 1
                assert all(e["ints"][k] in (0, 1, 2) for e in info.examples), (op, info.examples)
                assert 0 <= info.int_ranges[k][0] <= info.int_ranges[k][1] <= 2, (op, info.int_ranges)
    assert seen >= 8
    # the values left out: eager neither checks them nor computes its output from the inputs
    x, grid = torch.ones(1, 1, 2, 2, 2), torch.zeros(1, 1, 1, 4, 3)
    assert torch.equal(torch.grid_sampler_3d(x, grid, 0, 0, False), torch.ones(1, 1, 1, 1, 4))
    for mode in (-1, 3):
        assert not torch.equal(torch.grid_sampler_3d(x, grid, mode, 0, False), torch.ones(1, 1, 1, 1, 4))


def test_the_guard_rerun_lands_on_poisoned_memory_and_drops_an_uninitialised_output():
    from fuzz.gen.materialise import _poison_freed_memory  # noqa: PLC2701 - the guard's own helper

    made = torch.ones(4096, dtype=torch.float32)
    landed = 0
    for _ in range(5):  # malloc may hand out another free chunk that fits: most tries land
        _poison_freed_memory([made])
        again = torch.empty(4096, dtype=torch.float32)  # what the rerun's output of that size gets
        # (malloc keeps its free-list links in the first bytes of a freed chunk)
        landed += float((again.view(torch.uint8) == 0xA5).float().mean()) > 0.9
        del again
    assert landed >= 1
    # a call that returns memory it never wrote (an enum the kernel does not check) is dropped
    g = Graph()
    x = g.add_tensor([1, 2, 4, 4, 4], "float32", "input", name="x_0")
    grid = g.add_tensor([1, 4, 4, 4, 3], "float32", "input", name="grid_1")
    s = g.add_tensor([1, 2, 4, 4, 4], "float32", name="sampled_2")
    y = g.add_tensor([1, 2, 4, 4, 4], "float32", name="cos_3")
    g.add_node(Node(id="n0", op="torch.grid_sampler_3d", api="function",
                    args=[{"ref": x}, {"ref": grid}, -1, 0, False], kwargs={}, outputs=[s]))
    g.add_node(Node(id="n1", op="torch.cos", api="function", args=[{"ref": s}], kwargs={}, outputs=[y]))
    g.outputs = [y]
    model = materialise(g, seed=0, cfg=GenConfig())
    assert model.graph.ops() == ["torch.cos"]
    assert "not deterministic" in model.graph.meta["guard"]["reasons"][0]


def test_a_call_that_crashes_on_nonfinite_input_fails_instead_of_killing_the_generator():
    """float32 ``torch.linalg.eigvals`` on a NaN segfaults through MKL (pytorch#121149): the
    interpreter refuses the call (a NodeError, which the value search, the edge policy and the
    guard treat as a failing call) instead of making it; finite inputs run as before."""
    code = (
        "import torch\n"
        "from fuzz.gen.interpret import NodeError, run_node\n"
        "from fuzz.ir.graph import Node\n"
        "n = Node(id='n0', op='torch.linalg.eigvals', api='function', args=[{'ref': 'x'}], kwargs={}, outputs=['y'])\n"
        "x = torch.rand(2, 3, 3)\n"
        "print(tuple(run_node(n, {'x': x}, {})['y'].shape))\n"
        "x[0, 1, 2] = float('nan')\n"
        "try:\n"
        "    run_node(n, {'x': x}, {})\n"
        "except NodeError as exc:\n"
        "    print('refused', 'non-finite' in exc.message)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split("\n")[:2] == ["(2, 3)", "refused True"]
