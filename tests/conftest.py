import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def assay_cmd() -> list[str]:
    """The installed console command when present, else the module (same code)."""
    exe = Path(sys.executable).parent / "assay"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "fuzz.cli"]


@pytest.fixture
def assay():
    return assay_cmd()


def run_assay_cli(*argv, cwd=None, env=None, timeout=300, **kw) -> subprocess.CompletedProcess:
    """Run ``assay ARGV...`` as a user would (a child process), output captured as text."""
    return subprocess.run(assay_cmd() + [str(a) for a in argv], capture_output=True, text=True,
                          cwd=cwd or REPO, env=env, timeout=timeout, **kw)


@pytest.fixture
def run_assay():
    """``run_assay("rules", "stats", "--json")`` -> CompletedProcess of the real command."""
    return run_assay_cli


def pytest_configure(config):
    os.environ.setdefault("PYTHONWARNINGS", "ignore")


def mutated_files(data: bytes, count: int, seed: int = 0):
    """``count`` corruptions of a file's bytes, as ``(how, bytes)``: what disks, editors and
    interrupted writes do to files. Deterministic per seed; text files get line-level damage too."""
    import random
    import re

    rng = random.Random(seed)
    lines = data.split(b"\n")
    numbers = [m.span() for m in re.finditer(rb"-?\d+(?:\.\d+)?", data)]

    def one(kind):
        if kind == "truncate":
            return data[: rng.randrange(len(data))]
        if kind == "flip":
            b = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
            return bytes(b)
        if kind == "delete-line" and len(lines) > 1:
            i = rng.randrange(len(lines))
            return b"\n".join(lines[:i] + lines[i + 1:])
        if kind == "duplicate-line" and lines:
            i = rng.randrange(len(lines))
            return b"\n".join(lines[: i + 1] + lines[i:])
        if kind == "nan" and numbers:
            a, b = numbers[rng.randrange(len(numbers))]
            return data[:a] + rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e999"]) + data[b:]
        if kind == "non-utf8":
            i = rng.randrange(len(data) + 1)
            return data[:i] + bytes([0xff, 0xfe, 0xc3]) + data[i:]
        if kind == "empty":
            return b""
        return data[: len(data) // 2]

    kinds = ["truncate", "flip", "delete-line", "duplicate-line", "nan", "non-utf8", "empty"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        yield kind, one(kind)


def running_buffer_graph(x_shape: list, n: int):
    """``x - running.lerp_(stat, 0.1)`` with ``running`` a buffer the forward updates in place, as a
    state form makes it (meta buffers and writes, the node's write target): (graph, x, stat, running)."""
    from fuzz.ir.graph import Graph, Node

    g = Graph()
    x = g.add_tensor(list(x_shape), "float32", "input", name="x")
    stat = g.add_tensor([n], "float32", "input", name="stat")
    running = g.add_tensor([n], "float32", "param", name="running")
    upd = g.add_tensor([n], "float32", name="running_1")
    node = Node(id="b0", op="torch.Tensor.lerp_", api="function", args=[{"ref": running}, {"ref": stat}, 0.1],
                kwargs={}, outputs=[upd])
    node.extra["writes"] = running
    g.add_node(node)
    out = g.add_tensor(list(x_shape), "float32")
    g.add_node(Node(id="b1", op="torch.sub", api="function", args=[{"ref": x}, {"ref": upd}], kwargs={}, outputs=[out]))
    g.outputs = [out]
    g.meta.update(buffers=[running], writes=[{"state": running, "value": upd}])
    return g, x, stat, running
