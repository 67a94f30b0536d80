"""A worker killed by eager torch inside a test (a reference made on first use) is a finding, saved
as a ``signal`` case, and its verdict says the compiled side had not run: here a real torch 2.13
segfault (the twenty-third session's): eager ``group_norm`` backward of a channels-last input when
only the weight's gradient is asked for, which the train mode's reference step does."""

import json

import torch

from fuzz.campaign.executor import EAGER_STAGES, eager_stage
from fuzz.campaign.session import Session
from fuzz.gen import program
from fuzz.ir.graph import Graph, Node


def _group_norm_program(root):
    g = Graph()
    x = g.add_tensor([1, 6, 1, 1], "float32", "input", name="x")
    w = g.add_tensor([6], "float64", "param", name="w")
    cl = g.add_tensor([1, 6, 1, 1], "float64", name="cl")
    g.add_node(Node(id="n0", op="torch.Tensor.double", api="function", args=[{"ref": x}],
                    kwargs={"memory_format": {"enum": "torch.channels_last"}}, outputs=[cl]))
    y = g.add_tensor([1, 6, 1, 1], "float64", name="y")
    g.add_node(Node(id="n1", op="torch.nn.functional.group_norm", api="function", args=[{"ref": cl}, 2],
                    kwargs={"weight": {"ref": w}}, outputs=[y]))
    g.outputs = [y]
    gen = torch.Generator().manual_seed(0)
    program.save_program(g, {"x": torch.rand(1, 6, 1, 1, generator=gen), "w": torch.rand(6, generator=gen, dtype=torch.float64)},
                         root / "gn")
    return root


def test_a_segfault_in_the_eager_training_step_is_a_signal_case_that_names_eager(tmp_path, run_assay):
    progs = _group_norm_program(tmp_path / "progs")
    out = tmp_path / "camp"
    res = run_assay("fuzz", "--programs", progs, "--backends", "aot_eager", "--modes", "train", "--workers", "1",
                    "--out", out, "--time", "2m", "--no-recheck", timeout=400)
    assert res.returncode == 0, res.stderr[-2000:]
    (case_dir,) = [d for d in out.iterdir() if (d / "case.json").is_file()]
    case = json.loads((case_dir / "case.json").read_text())
    assert case["kind"] == "signal" and case["detail"].startswith("SIGSEGV in eager (train_reference)"), case["detail"]
    assert "train_reference" in case["error"]["traceback"]  # the stack survives the extension-module list
    assert case["signature"].startswith("signal-aot_eager-")


def test_eager_stage_reads_the_last_thread_block_of_a_faulthandler_dump():
    assert all(callable(getattr(Session, name, None)) for name in EAGER_STAGES)  # named by frame: keep in step
    frame = '  File "/w/fuzz/campaign/session.py", line {} in {}\n'
    watchdog = 'Thread 0x2 (most recent call first):\n  File "/py/threading.py", line 331 in wait\n\n'
    main = "Current thread 0x1 (most recent call first):\n" + frame.format(302, "train_reference") + frame.format(
        372, "_run_test")
    modules = "\nExtension modules: torch._C, c1.kernel (total: 2)\n"
    assert eager_stage("Fatal Python error: Segmentation fault\n\n" + watchdog + main + modules) == "train_reference"
    assert eager_stage(main[40:] + modules) == "train_reference"  # the header cut off
    compiled = "Current thread 0x1 (most recent call first):\n" + frame.format(386, "_run_test")
    assert eager_stage(watchdog + compiled + modules) is None
    # a train_reference frame of another thread is not the test thread's
    other = 'Thread 0x3 (most recent call first):\n' + frame.format(302, "train_reference") + "\n"
    assert eager_stage(other + compiled + modules) is None
