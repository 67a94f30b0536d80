"""Programs from hand-built graphs: source, standalone runs, load/build parity, value search."""

import json
import runpy
import subprocess
import sys

import pytest
import torch

from fuzz.gen import interpret

from fuzz.gen import program

from fuzz.gen import values
from fuzz.ir.graph import Graph, Node


def _graph() -> Graph:
    """conv2d (functional, weight param) -> log (can go NaN) -> Conv2d module -> max (two outputs)."""
    g = Graph()
    x = g.add_tensor([2, 3, 8, 8], "float32", "input", name="x_0")
    w = g.add_tensor([4, 3, 3, 3], "float32", "param", name="w_1")
    c = g.add_tensor([2, 4, 6, 6], "float32", name="conv2d_2")
    g.add_node(Node(id="n0", op="torch.nn.functional.conv2d", api="function", args=[{"ref": x}, {"ref": w}],
                    kwargs={"stride": [1, 1]}, outputs=[c]))
    lg = g.add_tensor([2, 4, 6, 6], "float32", name="log_3")
    g.add_node(Node(id="n1", op="aten::log", api="aten", overload="default", args=[{"ref": c}], kwargs={}, outputs=[lg]))
    m = g.add_tensor([2, 5, 6, 6], "float32", name="conv2d_4")
    g.add_node(Node(id="n2", op="torch.nn.Conv2d", api="module", init={"args": [4, 5, 1], "kwargs": {}},
                    args=[{"ref": lg}], kwargs={}, outputs=[m]))
    mx = g.add_tensor([2, 6, 6], "float32", name="max_5")
    ix = g.add_tensor([2, 6, 6], "int64", name="max_6")
    g.add_node(Node(id="n3", op="torch.max", api="function", args=[{"ref": m}, 1], kwargs={}, outputs=[mx, ix],
                    extra={"returns": [mx, ix]}))
    g.outputs = [mx, ix]
    return g


def _materialise(g, seed=1):
    r = values.search(g, seed=seed)
    state = {**{k: r.leaves[k] for k in g.params}, **interpret.submodule_state(g, r.submodules)}
    return r, state, [r.leaves[i] for i in g.inputs]


def test_source_reads_like_code():
    src = program.program_source(_graph())
    assert "conv2d_2 = torch.nn.functional.conv2d(x_0, self.w_1, stride=[1, 1])" in src
    assert "log_3 = torch.ops.aten.log.default(conv2d_2)" in src
    assert "self.conv2d_n2 = torch.nn.Conv2d(4, 5, 1)" in src
    assert "max_5, max_6 = torch.max(conv2d_4, 1)" in src
    assert "pickle" not in src and "safetensors" in src  # its own reader, no import of the package
    assert "import safetensors" not in src


def test_value_search_removes_nan_from_log():
    g = _graph()
    r, state, inputs = _materialise(g)
    assert r.finite and r.error is None
    outs = program.run_eager(program.build_module(g, state), inputs)
    assert [list(o.shape) for o in outs] == [[2, 6, 6], [2, 6, 6]]
    assert values.all_finite(outs)
    # Without the search, uniform(-2, 2) inputs make conv2d negative somewhere and log NaN.
    torch.manual_seed(0)
    mod = program.build_module(g)
    raw = program.run_eager(mod, [torch.rand(2, 3, 8, 8) * 4 - 2])
    assert not values.all_finite(raw)


def test_save_run_standalone_and_load(tmp_path):
    g = _graph()
    r, state, inputs = _materialise(g)
    outs = program.run_eager(program.build_module(g, state), inputs)
    d = tmp_path / "m0"
    program.save_program(g, {**dict(zip(g.inputs, inputs)), **state}, d)
    assert sorted(p.name for p in d.iterdir()) == sorted(program.PROGRAM_FILES)
    data = json.loads((d / "graph.json").read_text())
    assert [n["op"] for n in data["nodes"]][:2] == ["torch.nn.functional.conv2d", "aten::log"]
    assert Graph.from_json(data).to_json() == g.to_json()
    # Standalone, from another working directory: only torch and the files beside it.
    res = subprocess.run([sys.executable, str(d / "program.py")], capture_output=True, text=True, cwd=tmp_path.parent, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "2 outputs: float32[2, 6, 6], int64[2, 6, 6]"
    runpy.run_path(str(d / "program.py"), run_name="__main__")
    g2, mod2, inputs2 = program.load_program(d)
    assert g2.to_json() == g.to_json()
    again = program.run_eager(mod2, inputs2)
    assert all(torch.equal(a, b) for a, b in zip(outs, again))
    # The campaign can import Model and load_inputs from the file itself.
    ns = runpy.run_path(str(d / "program.py"))
    assert callable(ns["load_inputs"]) and issubclass(ns["Model"], torch.nn.Module)


def test_interpreter_flags_wrong_shape():
    g = _graph()
    g.tensors["log_3"].shape = [2, 4, 6, 7]
    r = values.search(g, seed=0)
    assert r.structural and r.error is not None and r.error.node.id == "n1"


def test_dtypes_in_safetensors_roundtrip(tmp_path):
    g = Graph()
    names = []
    for dt in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "bool", "uint8"):
        names.append(g.add_tensor([3], dt, "input", name=f"x_{dt}"))
    outs = []
    for i, n in enumerate(names):
        o = g.add_tensor([3], g.tensors[n].dtype, name=f"clone_{i}")
        g.add_node(Node(id=f"n{i}", op="aten::clone", api="aten", overload="default", args=[{"ref": n}], kwargs={}, outputs=[o]))
        outs.append(o)
    g.outputs = outs
    r = values.search(g, seed=3)
    program.save_program(g, dict(r.leaves), tmp_path / "d")
    _, mod, inputs = program.load_program(tmp_path / "d")
    for a, n in zip(inputs, names):
        assert torch.equal(a, r.leaves[n])


def test_exec_source_shares_compiled_chunks_but_keeps_each_programs_file_and_lines():
    """Top-level chunks two programs share are compiled once (fuzz.gen.program._chunk_codes); each
    program still reports its own file name and line numbers, and changed text is compiled anew."""
    import traceback

    from fuzz.gen.program import exec_source

    a = '"""a"""\nimport os\n\n\ndef opened(p):\n    return open(p)\n'
    b = '"""b"""\nimport os\nX = 1\n\n\ndef opened(p):\n    return open(p)\n'
    for source, line in ((a, 6), (b, 7), (a, 6)):
        ns = exec_source(source)
        with pytest.raises(FileNotFoundError) as err:
            ns["opened"]("/nonexistent/assay")
        frame = traceback.extract_tb(err.value.__traceback__)[-1]
        assert (frame.filename, frame.lineno, frame.line) == (ns["__file__"], line, "return open(p)")
        assert ns["__doc__"] == source[3]
    shared = [line for text, line in program._CHUNK_CODE if text == "def opened(p):\n    return open(p)\n"]
    assert sorted(shared) == [4, 5]  # compiled once per first line, not once per program
    changed = exec_source(a.replace("open(p)", "p + '!'"))  # same chunk position, new text
    assert changed["opened"]("x") == "x!"


def test_a_program_function_dynamo_inlines_from_torchs_code_is_importable_under_export():
    """scan's combine function, defined in the program, is called from torch's own scan code and
    reads a global (``torch``): dynamo imports the function's module by name to reach it. Every program used to run
    as one unimportable ``assay_program`` namespace, and export raised ``ModuleNotFoundError`` where
    the case's repro.py (run as ``__main__``) agreed: a false crash of the s26b campaign."""
    import sys

    import torch

    from fuzz.gen.program import MODULES_KEPT, exec_source

    source = ("import torch\n\n\ndef combine(carry, x):\n    top = torch.maximum(carry, x)\n    return top, top * x\n\n\n"
              "class Model(torch.nn.Module):\n    def forward(self, init, xs):\n"
              "        return torch._higher_order_ops.scan(combine, init, xs)\n")
    ns = exec_source(source)
    assert sys.modules[ns["__name__"]].__dict__ is ns
    init, xs = torch.zeros(3), torch.arange(12.0).reshape(4, 3)
    exported = torch.export.export(ns["Model"](), (init, xs)).module()
    carry, ys = exported(init, xs)
    assert torch.equal(carry, xs.amax(0)) and ys.shape == (4, 3)
    for _ in range(MODULES_KEPT):  # only the programs executed last stay in sys.modules
        exec_source("X = 1\n")
    assert ns["__name__"] not in sys.modules
