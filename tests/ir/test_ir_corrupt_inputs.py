"""The IR's loaders on hundreds of damaged files: a documented error or a clean read, never
anything else (no other exception, no hang).

graph.json (``Graph.loads``), the rules file (``read_rules``) and the trace corpus
(``read_records``) are what every later stage reads; the campaign, triage and verify loaders
have tests of their own. A loader may also accept a damaged file when what is left is still
well-formed (a deleted node that nothing used, a duplicated rule line): that is a clean read.
"""

import gzip
import signal

import pytest

from conftest import mutated_files
from fuzz.errors import AssayError
from fuzz.ir.graph import Graph
from fuzz.ir.record import read_records
from fuzz.ir.rule import read_rules, rules_path

N = 300


@pytest.fixture
def watchdog():
    """Fail a single load that takes over 5 s (a hang) instead of stalling the suite."""
    def alarm(signum, frame):
        raise TimeoutError("a loader hung on a damaged file")

    old = signal.signal(signal.SIGALRM, alarm)
    yield lambda: signal.alarm(5)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _graph_bytes() -> bytes:
    from fuzz.ir.graph import Node

    g = Graph()
    x = g.add_tensor([4, 6], "float32", "input", name="x")
    w = g.add_tensor([5, 6], "float32", "param", name="w")
    prev = x
    for op, args, shape in (("torch.sigmoid", [], [4, 6]), ("torch.nn.functional.linear", [{"ref": w}], [4, 5]),
                            ("torch.sum", [1], [4])):
        out = g.add_tensor(shape, "float32")
        g.add_node(Node(id=g.new_node_id(), op=op, api="function", args=[{"ref": prev}, *args], kwargs={},
                        outputs=[out]))
        prev = out
    g.outputs = [prev]
    return g.dumps().encode()


def test_damaged_graph_json_is_a_value_error(watchdog):
    outcomes = {"error": 0, "read": 0}
    for how, data in mutated_files(_graph_bytes(), N, seed=1):
        watchdog()
        try:
            Graph.loads(data.decode("utf-8", errors="strict"))
            outcomes["read"] += 1
        except UnicodeDecodeError:  # the caller's read_text raises this; see the campaign/triage loaders
            outcomes["error"] += 1
        except ValueError:  # json.JSONDecodeError and 'not a graph' are ValueErrors
            outcomes["error"] += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{how}: {type(exc).__name__}: {exc}")
    assert outcomes["error"] > N // 2, outcomes


@pytest.mark.parametrize("kind", ["rules", "traces"])
def test_damaged_corpus_files_are_one_assay_error(tmp_path, watchdog, kind):
    if kind == "rules":
        src, reader = rules_path(), read_rules
    else:
        src, reader = sorted(rules_path().parent.glob("traces*.jsonl.gz"))[0], read_records
    with gzip.open(src, "rb") as fh:
        text = b"".join(fh.readline() for _ in range(40))  # 40 lines: damage lands in the data
    errors = 0
    for i, (how, data) in enumerate(mutated_files(text, N // 2, seed=2)):
        for packed, name in ((gzip.compress(data, mtime=0), f"{i}.jsonl.gz"), (data, f"{i}.jsonl")):
            path = tmp_path / name
            path.write_bytes(packed)
            watchdog()
            try:
                for _ in reader(path):
                    pass
            except AssayError as exc:
                errors += 1
                assert "\n" not in str(exc) and str(path) in str(exc)
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"{how} ({name}): {type(exc).__name__}: {exc}")
        # and the compressed stream itself damaged
        for how2, packed in mutated_files(gzip.compress(text, mtime=0), 2, seed=i):
            path = tmp_path / f"z{i}.jsonl.gz"
            path.write_bytes(packed)
            watchdog()
            try:
                for _ in reader(path):
                    pass
            except AssayError:
                errors += 1
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"gzip {how2}: {type(exc).__name__}: {exc}")
    assert errors > N // 2


def _wrong_types(base: dict) -> dict:
    node = base["nodes"][0]
    tensors = base["tensors"]
    return {
        "a list": [], "a string": "x", "null": None,
        "nodes not a list": dict(base, nodes=5), "tensors a list": dict(base, tensors=[]),
        "outputs a string": dict(base, outputs="x"), "output not a name": dict(base, outputs=[3]),
        "node a string": dict(base, nodes=["n"]), "node outputs an int": dict(base, nodes=[dict(node, outputs=7)]),
        "node args an int": dict(base, nodes=[dict(node, args=7)]),
        "kwargs a list": dict(base, nodes=[dict(node, kwargs=[1])]),
        "unknown api": dict(base, nodes=[dict(node, api="jit")]),
        "shape a string": dict(base, tensors={k: dict(v, shape="ab") for k, v in tensors.items()}),
        "negative size": dict(base, tensors={k: dict(v, shape=[-1]) for k, v in tensors.items()}),
        "meta a list": dict(base, meta=[1]),
        "ref not a name": dict(base, nodes=[dict(node, args=[{"ref": 5}])]),
    }


def test_graph_json_of_the_wrong_shape_is_a_value_error():
    import json

    base = json.loads(_graph_bytes())
    for how, data in _wrong_types(base).items():
        with pytest.raises(ValueError):
            Graph.loads(json.dumps(data))
    assert Graph.loads(json.dumps(base)).to_json() == base
