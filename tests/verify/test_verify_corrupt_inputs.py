"""The verifier's loaders on hundreds of damaged files: a load error or a clean read, nothing else.

A damaged .nnet, ONNX or VNN-LIB file must end in the loader's own error (``NetworkLoadError``,
``VnnlibError``: one line through the CLI), never another exception, a hang or a signal. The
loads run in one child process (protobuf parses ONNX in C++: a crash there must fail this
test, not kill the test run).
"""

import json
import os
import subprocess
import sys

from conftest import mutated_files

DATA = os.path.join(os.path.dirname(__file__), "data")
N = 120

CHILD = r"""
import json, sys
from verify.load import load_network, NetworkLoadError
from verify.vnnlib import read_vnnlib, VnnlibError
out = {}
for path in sys.argv[1:]:
    try:
        if path.endswith(".vnnlib"):
            read_vnnlib(path, n_inputs=5, n_outputs=5)
        else:
            load_network(path)
        out[path] = "read"
    except (NetworkLoadError, VnnlibError) as exc:
        out[path] = "error" if "\n" not in str(exc) else "multi-line error"
    except Exception as exc:
        out[path] = f"{type(exc).__name__}: {exc}"[:300]
print(json.dumps(out))
"""


def test_damaged_networks_and_properties_are_load_errors(tmp_path):
    sources = {".nnet": "ACASXU_experimental_v2a_1_1.nnet", ".onnx": "test_small.onnx", ".vnnlib": "test_prop.vnnlib"}
    paths = []
    for ext, name in sources.items():
        data = open(os.path.join(DATA, name), "rb").read()
        for i, (how, damaged) in enumerate(mutated_files(data, N, seed=len(ext))):
            path = tmp_path / f"{how}-{i}{ext}"
            path.write_bytes(damaged)
            paths.append(str(path))
    res = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"the loader process died (rc {res.returncode}): {res.stderr[-2000:]}"
    outcomes = json.loads(res.stdout)
    bad = {p: o for p, o in outcomes.items() if o not in ("read", "error")}
    assert not bad, "\n".join(f"{os.path.basename(p)}: {o}" for p, o in list(bad.items())[:20])
    for ext in sources:
        errors = sum(o == "error" for p, o in outcomes.items() if p.endswith(ext))
        assert errors >= N // 3, (ext, errors)  # most damage is noticed, not read as another net


def test_damaged_files_through_the_cli_are_one_line(tmp_path, run_assay):
    net = open(os.path.join(DATA, "ACASXU_experimental_v2a_1_1.nnet"), "rb").read()
    prop = open(os.path.join(DATA, "test_prop.vnnlib"), "rb").read()
    for i, ((how, bad_net), (how2, bad_prop)) in enumerate(zip(mutated_files(net, 7, seed=5),
                                                              mutated_files(prop, 7, seed=6))):
        (tmp_path / "n.nnet").write_bytes(bad_net)
        (tmp_path / "p.vnnlib").write_bytes(bad_prop)
        for argv in (("verify", tmp_path / "n.nnet", "--point", "0,0,0,0,0", "--eps", "0.01", "--timeout", "5"),
                     ("verify", os.path.join(DATA, "ACASXU_experimental_v2a_1_1.nnet"), "--vnnlib",
                      tmp_path / "p.vnnlib", "--timeout", "5")):
            res = run_assay(*argv, timeout=120)
            assert "Traceback" not in res.stderr, (how, how2, res.stderr[-1500:])
            if res.returncode != 0:
                assert len(res.stderr.strip().splitlines()) == 1, (how, how2, res.stderr)
