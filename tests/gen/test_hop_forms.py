"""Higher-order operators as program forms (fuzz.gen.hop_forms, fuzz.gen.hop_fns): the eager
equivalents compute what torch's operators compute, compiled programs trace the operators, and a
saved program carries every function it calls."""

import json
import warnings

import pytest
import torch

from fuzz.campaign.oracle import strides_differ
from fuzz.gen import hop_fns, interpret, program
from fuzz.gen.chooser import RandomChooser
from fuzz.gen.hop_forms import HOPS, place_hop
from fuzz.ir.graph import Graph, Node
from saved_programs import run_saved_program

# the higher-order operator each form's compiled program must hold (associative_scan's "generic" mode,
# the one CPU tensors take, is traced as the tree of combine calls it runs)
TRACED = {"scan": "scan", "associative_scan": "logaddexp", "map": "map_impl", "while_loop": "while_loop",
          "flex_attention": "flex_attention"}


def _tanh_graph(shape) -> Graph:
    g = Graph()
    x = g.add_tensor(shape, "float32", "input", name="x_0")
    y = g.add_tensor(shape, "float32", name="tanh_1")
    g.add_node(Node(id="n0", op="torch.tanh", api="function", args=[{"ref": x}], kwargs={}, outputs=[y]))
    g.outputs = [y]
    return g


def _inputs(g: Graph, seed: int) -> list:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(g.tensors[i].shape, generator=gen) for i in g.inputs]


def _same(got, want):
    """Same values, and the same layout (a compiled output is judged on its strides against eager's)."""
    torch.testing.assert_close(got, want)
    assert not strides_differ(want, got), (got.stride(), want.stride())


def test_eager_equivalents_compute_what_torchs_operators_compute():
    """Each ``*_in_eager`` against torch's operator called eagerly, on random values, both
    directions of the scans over every dim and every function the forms pass: values and strides."""
    warnings.filterwarnings("ignore")
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(4, 5, 3, generator=gen)
    for step in hop_fns.SCAN_STEPS:
        fn = getattr(hop_fns, step)
        for dim in (0, 1, 2):
            for reverse in (False, True):
                init = torch.randn(*[s for k, s in enumerate(xs.shape) if k != dim], generator=gen)
                want = torch._higher_order_ops.scan(fn, init, xs, dim=dim, reverse=reverse)
                got = hop_fns.scan_in_eager(fn, init, xs, dim, reverse)
                for a, b in zip(want, got):
                    _same(b, a)
    for combine in (torch.add, torch.maximum, torch.logaddexp):
        for dim in (0, 1, 2):
            for reverse in (False, True):
                want = torch._higher_order_ops.associative_scan(combine, xs, dim, reverse=reverse, combine_mode="generic")
                _same(hop_fns.associative_scan_in_eager(combine, xs, dim, reverse), want)
    for xs1 in (torch.randn(1, 3, generator=gen), torch.randn(3, 1, generator=gen).t()):
        # torch's associative_scan returns a view of a one-element dim (a later write into xs shows
        # in it), reversed a copy (a reversed scan of a clamp_ed view read the write: a false alarm)
        for reverse in (False, True):
            want = torch._higher_order_ops.associative_scan(torch.add, xs1, 0, reverse=reverse, combine_mode="generic")
            got = hop_fns.associative_scan_in_eager(torch.add, xs1, 0, reverse)
            _same(got, want)
            shares = [t.untyped_storage().data_ptr() == xs1.untyped_storage().data_ptr() for t in (want, got)]
            assert shares == [not reverse] * 2, (reverse, shares)
    for f in (torch.tanh, hop_fns.map_normalise, hop_fns.map_softmax_last):
        _same(hop_fns.map_in_eager(f, xs), torch._higher_order_ops.map(f, xs))
    for step in hop_fns.LOOP_STEPS:
        carried = (torch.zeros([], dtype=torch.int64), xs)
        want = torch._higher_order_ops.while_loop(hop_fns.loop_below_three, getattr(hop_fns, step), carried)
        got = hop_fns.while_loop_in_eager(hop_fns.loop_below_three, getattr(hop_fns, step), carried)
        assert int(got[0]) == int(want[0]) == 3
        _same(got[1], want[1])
    from torch.nn.attention.flex_attention import flex_attention

    q, k, v = (torch.randn(2, 3, 6, 4, generator=gen) for _ in range(3))
    for mod in (None,) + tuple(getattr(hop_fns, m) for m in hop_fns.SCORE_MODS):
        _same(hop_fns.flex_attention_in_eager(q, k, v, mod), flex_attention(q, k, v, score_mod=mod))


@pytest.mark.parametrize("kind", HOPS)
def test_each_operator_is_placed_traced_when_compiled_and_matches_eager(kind):
    """The program's eager run computes the operator without dynamo; torch.compile traces the
    higher-order operator itself, and both give the same values."""
    from torch._dynamo.utils import counters

    warnings.filterwarnings("ignore")
    g = _tanh_graph([2, 3, 5, 4])
    assert place_hop(g, 0, kind, RandomChooser(1))
    if kind == "associative_scan":
        g.nodes[-1].args[0] = {"fn": "torch.logaddexp"}
    assert g.nodes[-1].extra["form"] == kind and g.outputs[-1] in g.nodes[-1].outputs
    module = program.build_module(g, {})
    ins = _inputs(g, 1)
    torch._dynamo.reset()
    before = counters["stats"]["unique_graphs"]
    eager = program.run_eager(module, ins)
    assert counters["stats"]["unique_graphs"] == before  # dynamo compiled nothing in eager
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    with torch.no_grad():
        compiled = torch.compile(module, backend=record, fullgraph=True)(*ins)
    targets = {str(n.target) for gm in graphs for n in gm.graph.nodes}
    assert any(TRACED[kind] in t for t in targets), targets
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(b, a)


def test_saved_program_carries_its_functions_and_runs_alone(tmp_path):
    """``python program.py`` needs only torch: the operator's function, its eager equivalent and the
    functions passed to it are pasted into the program."""
    g = _tanh_graph([1, 2, 6, 4])
    assert place_hop(g, 0, "flex_attention", RandomChooser(0))
    assert place_hop(g, 0, "scan", RandomChooser(2))
    source = program.program_source(g)
    for name in ("def flex_attention(", "def flex_attention_in_eager(", "def scan(", "def scan_in_eager("):
        assert source.count(name) == 1
    passed = [f[len(hop_fns.PREFIX):] for n in g.nodes for f in program._passed_functions(n.args + list(n.kwargs.values()))]
    assert passed and all(f"def {f}(" in source for f in passed)
    assert "fuzz" not in source
    run_saved_program(g, _inputs(g, 3), tmp_path)


def test_while_loop_runs_on_meta_tensors_through_cpu_zeros():
    """Triage's meta runs (aten_ops, shape propagation) cannot read a loop's condition from meta
    tensors: the loop runs on CPU zeros of its inputs instead."""
    g = _tanh_graph([3, 4])
    assert place_hop(g, 0, "while_loop", RandomChooser(0))
    ops = interpret.aten_ops(g)
    assert "aten.tanh" in ops and any(op in ops for op in ("aten.sin", "aten.mul", "aten.clamp", "aten.mean"))
    assert json.loads(json.dumps(g.to_json()))["nodes"][-1]["extra"]["data_dependent"] == "loop"


def test_flex_attention_takes_a_matrix_as_one_head():
    """A rank-2 tensor enters flex_attention as [1, 1, length, dim] (a reshape on the line above)."""
    g = _tanh_graph([6, 4])
    assert place_hop(g, 0, "flex_attention", RandomChooser(0))
    reshape, flex = g.nodes[-2:]
    assert reshape.op == "torch.reshape" and reshape.args[1] == [1, 1, 6, 4]
    assert g.tensors[flex.outputs[0]].shape == [1, 1, 6, 4]
    eager = program.run_eager(program.build_module(g, {}), _inputs(g, 0))
    assert eager[-1].shape == (1, 1, 6, 4) and torch.isfinite(eager[-1]).all()


def test_flex_attention_over_empty_sequences_does_what_torchs_does():
    """No queries: an empty result, as torch's eager flex_attention returns. No keys: torch's raises
    (a max over them), so the eager equivalent raises too and such a call never enters a model (the
    c183 campaign's aot_eager "crashes" on an empty key sequence were torch's own error)."""
    from torch.nn.attention.flex_attention import flex_attention

    q, kv = torch.randn(1, 1, 0, 8), torch.randn(1, 1, 4, 8)
    assert hop_fns.flex_attention_in_eager(q, kv, kv).shape == flex_attention(q, kv, kv).shape == (1, 1, 0, 8)
    q, kv = torch.randn(1, 1, 4, 8), torch.randn(1, 1, 0, 8)
    with pytest.raises(IndexError):
        flex_attention(q, kv, kv)
    with pytest.raises(IndexError, match="empty key sequence"):
        hop_fns.flex_attention_in_eager(q, kv, kv)
    q = kv = torch.randn(1, 0, 1, 1)  # no heads: torch's divides by the key heads (c185, model 27)
    with pytest.raises(ZeroDivisionError):
        flex_attention(q, kv, kv)
    with pytest.raises(ZeroDivisionError, match="no key heads"):
        hop_fns.flex_attention_in_eager(q, kv, kv)


def test_loops_run_over_short_dims_only():
    """A loop's steps are Python calls (the generator's equivalents, the compiled wrapper's loop):
    scan, associative_scan and map run over a dim of at most MAX_STEPS elements, or are not placed."""
    from fuzz.gen.hop_forms import MAX_STEPS

    for kind in ("scan", "associative_scan", "map"):
        assert not place_hop(_tanh_graph([MAX_STEPS + 1, MAX_STEPS + 7]), 0, kind, RandomChooser(0))
        for seed in range(6):
            g = _tanh_graph([MAX_STEPS + 1, 3]) if kind != "map" else _tanh_graph([3, MAX_STEPS + 1])
            assert place_hop(g, 0, kind, RandomChooser(seed))
            node = g.nodes[-1]
            dim = node.kwargs["dim"] if kind == "scan" else node.args[2] if kind == "associative_scan" else 0
            assert g.tensors[g.outputs[0]].shape[dim] <= MAX_STEPS


@pytest.mark.parametrize("kind", HOPS)
def test_every_operator_runs_on_meta_tensors(kind):
    """Triage's shape propagation and aten_ops run graphs on meta tensors: the equivalents must too
    (flex_attention's index tensors are made on the scores' device)."""
    for seed in range(4):
        g = _tanh_graph([1, 2, 6, 4])
        assert place_hop(g, 0, kind, RandomChooser(seed))
        assert "aten.tanh" in interpret.aten_ops(g)


def test_pasted_sources_are_those_the_process_loaded(tmp_path):
    """A program carries the functions' sources as loaded: the file changing on disk afterwards
    (an upgrade during a campaign) must not shift what is pasted (inspect.getsource would read the
    new file at the old line numbers)."""
    import importlib.util
    import inspect
    import linecache
    from pathlib import Path

    source = Path(hop_fns.__file__).read_text()
    copy = tmp_path / "hop_fns_copy.py"
    copy.write_text(source)
    spec = importlib.util.spec_from_file_location("hop_fns_copy", copy)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    copy.write_text("# upgraded\n" * 7 + source.replace("top * x", "top * x * 2"))
    linecache.clearcache()
    for name in ("flex_attention", "scan_running_max", "loop_sin_step"):
        assert loaded.helper_source(name) == inspect.getsource(getattr(hop_fns, name))


def test_flex_attention_sometimes_reads_a_permuted_feature_map():
    """A rank-4 tensor enters flex_attention as is or permuted [B, E, H, L] -> [B, H, L, E] (a query
    whose last dim is not contiguous, as vision attention reads a conv's output); eager computes the
    attention of the permuted query."""
    permuted = 0
    for seed in range(16):
        g = _tanh_graph([2, 3, 5, 4])
        assert place_hop(g, 0, "flex_attention", RandomChooser(seed))
        pre = g.nodes[-2]
        if pre.op != "torch.permute":
            continue
        permuted += 1
        assert pre.args[1] == [0, 2, 3, 1] and g.tensors[g.nodes[-1].outputs[0]].shape == [2, 5, 4, 3]
        ins = _inputs(g, seed)
        out = program.run_eager(program.build_module(g, {}), ins)[-1]
        feed = dict(zip(g.inputs, ins))
        q = torch.tanh(feed["x_0"]).permute(0, 2, 3, 1)
        call = g.nodes[-1]
        mod = call.kwargs.get("score_mod")
        want = hop_fns.flex_attention_in_eager(q, feed[call.args[1]["ref"]], feed[call.args[2]["ref"]],
                                               getattr(hop_fns, hop_fns.helper_name(mod["fn"])) if mod else None)
        torch.testing.assert_close(out, want)
    assert 2 <= permuted <= 10


@pytest.mark.parametrize("kind", ("flex_attention", "map", "while_loop"))
def test_later_readers_sometimes_read_the_operators_result(kind):
    """Half the time a result of ``a``'s shape and dtype replaces ``a`` for the calls after the
    operator (a compiler fuses them into it); the eager program still runs."""
    seen = set()
    for seed in range(12):
        g = _tanh_graph([1, 2, 6, 4])
        y = g.add_tensor([1, 2, 6, 4], "float32", name="mul_9")
        g.add_node(Node(id="n9", op="torch.mul", api="function", args=[{"ref": "tanh_1"}, 2.0], kwargs={}, outputs=[y]))
        g.outputs = [y]
        assert place_hop(g, 0, kind, RandomChooser(seed))
        call = next(n for n in g.nodes if n.extra.get("hop"))
        read = g.nodes[-1].inputs()[0]
        seen.add(read in call.outputs)
        assert read == "tanh_1" or read in call.outputs
        program.run_eager(program.build_module(g, {}), _inputs(g, seed))
    assert seen == {True, False}
