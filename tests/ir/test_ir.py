"""The IR every stage speaks: the rule DSL, the trace record codec, call templates, the graph."""

import dataclasses
import json
import random

import pytest
import torch
import z3

from fuzz.ir import dsl
from fuzz.ir.graph import Graph, Node
from fuzz.ir.template import fill_call, signature_key, split_call
from fuzz.ir.record import Record, decode_value, encode_value, read_records, resolve_op, write_records
from fuzz.errors import AssayError

CONV_OUT = ["+", ["//", ["-", ["+", "x0_2", ["*", 2, "a1"]], "x1_2"], "a0"], 1]


def test_dsl_python_and_z3_agree_on_random_points():
    rng = random.Random(0)
    exprs = [CONV_OUT, ["min", "x0_2", ["%", "a1", "a0"]], ["max", ["-", "x0_2", 7], ["*", "a0", "a1"]]]
    for _ in range(50):
        env = {"x0_2": rng.randint(1, 64), "x1_2": rng.randint(1, 9), "a0": rng.randint(1, 5), "a1": rng.randint(0, 4)}
        for e in exprs:
            s = z3.Solver()
            zenv = {k: z3.Int(k) for k in env}
            s.add(*[zenv[k] == v for k, v in env.items()])
            out = z3.Int("out")
            s.add(out == dsl.to_z3(e, zenv))
            assert s.check() == z3.sat
            assert s.model()[out].as_long() == dsl.evaluate(e, env)


def test_dsl_predicates_and_render():
    pred = ["and", ["==", "x0_1", "x1_1"], ["or", ["<", "a0", 3], ["not", [">=", "a1", 0]]]]
    assert dsl.evaluate(pred, {"x0_1": 4, "x1_1": 4, "a0": 2, "a1": 9})
    assert not dsl.evaluate(pred, {"x0_1": 4, "x1_1": 5, "a0": 2, "a1": 9})
    assert not dsl.holds([["==", ["//", "a0", "a1"], 0]], {"a0": 1, "a1": 0})  # undefined never holds
    assert dsl.render(CONV_OUT) == "(x0_2 + 2 * a1 - x1_2) // a0 + 1"
    assert dsl.symbols(CONV_OUT) == {"x0_2", "a1", "x1_2", "a0"}


def _conv_record():
    x, w = torch.empty(1, 3, 8, 8, device="meta"), torch.empty(4, 3, 3, 3, device="meta")
    out = torch.nn.functional.conv2d(x, w, None, [2, 2], [1, 1])
    return Record(op="torch.nn.functional.conv2d", kind="function",
                  args=[encode_value(v) for v in (x, w, None, [2, 2], [1, 1])], kwargs={},
                  ok=True, out=[encode_value(out)], source="test")


def test_record_roundtrip_and_replay(tmp_path):
    rec = _conv_record()
    path = tmp_path / "t.jsonl.gz"
    write_records(path, [rec, rec])
    first = path.read_bytes()
    write_records(path, [rec, rec])
    assert path.read_bytes() == first  # deterministic bytes
    back = list(read_records(path))
    assert [r.to_json() for r in back] == [rec.to_json()] * 2
    fn = resolve_op(back[0].op, back[0].kind)
    args = decode_value(back[0].args, lambda t: torch.empty(t["T"], dtype=getattr(torch, t["dtype"]), device="meta"))
    assert list(fn(*args).shape) == back[0].out[0]["T"] == [1, 4, 4, 4]


def test_corrupt_trace_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(AssayError, match="cannot read trace file"):
        list(read_records(bad))


def test_signature_split_and_fill():
    rec = _conv_record()
    template, values = split_call(rec)
    assert values.shapes == ((1, 3, 8, 8), (4, 3, 3, 3))
    assert values.ints == (2, 2, 1, 1)
    assert template["args"][3] == [{"A": 0}, {"A": 1}]
    _, args, _ = fill_call(template, lambda i: {"ref": f"t{i}"}, [1, 1, 0, 0])
    assert args == [{"ref": "t0"}, {"ref": "t1"}, None, [1, 1], [0, 0]]
    other = _conv_record()
    other.args[3] = [3, 3]
    assert signature_key(rec) == signature_key(other)  # ints are values, not part of the signature
    other.args[0] = {"T": [3, 8, 8], "dtype": "float32"}
    assert signature_key(rec) != signature_key(other)  # ranks are


def test_floats_are_values_not_signature():
    """dropout(x, p=0.3) and dropout(x, p=0.5, ...) are one signature; non-finite floats too."""
    rec = Record(kind="function", op="torch.nn.functional.dropout", args=[{"T": [2, 3], "dtype": "float32"}, 0.3],
                 kwargs={"training": False}, ok=True, out=[{"T": [2, 3], "dtype": "float32"}])
    template, values = split_call(rec)
    assert template["args"] == [{"X": 0}, {"F": 0}] and values.floats == (0.3,)
    other = dataclasses.replace(rec, args=[{"T": [4, 5], "dtype": "float32"}, {"float": "nan"}])
    assert signature_key(rec) == signature_key(other)
    assert split_call(other)[1].floats == ({"float": "nan"},)
    _, args, kwargs = fill_call(template, lambda i: {"ref": f"t{i}"}, [], [0.7])
    assert args == [{"ref": "t0"}, 0.7] and kwargs == {"training": False}


def test_graph_json_roundtrip_and_networkx_view():
    g = Graph()
    x = g.add_tensor([2, 3], "float32", "input")
    w = g.add_tensor([4, 3], "float32", "param")
    h = g.add_tensor([2, 4], "float32")
    y = g.add_tensor([2, 4], "float32")
    g.add_node(Node(id="n0", op="torch.nn.functional.linear", api="function", args=[{"ref": x}, {"ref": w}], kwargs={}, outputs=[h]))
    g.add_node(Node(id="n1", op="aten::relu", api="aten", overload="default", args=[{"ref": h}], kwargs={}, outputs=[y], kind="concrete"))
    g.outputs = [y]
    again = Graph.loads(g.dumps())
    assert again.to_json() == g.to_json()
    assert json.loads(again.dumps()) == json.loads(g.dumps())
    assert list(again.nx.predecessors("n1")) == ["n0"]
    assert "aten::relu(t_2)  # concrete" in g.render()
    g.outputs = ["nope"]
    with pytest.raises(ValueError):
        Graph.loads(g.dumps())
