"""Eager values of a graph computed in a forked child process, for the reducer.

The reducer needs every tensor's eager value of its current graph (a dropped node's output
becomes a graph input holding the value it had) and, where meta tensors cannot run a graph,
the shapes one eager run gives. Those are runs of the code under test: an operator that
segfaults or hangs on the reduced arguments (``aten._upsample_bilinear2d_aa.out`` with a
zero-element ``out=`` killed a ``triage reduce`` process) must cost the reducer a candidate,
not the process. ``eager_values_in_child`` runs ``fuzz.gen.interpret.eager_values`` in a
worker of ``fuzz.isolation.run_tasks`` (forked: torch is already imported; a deadline and an
address-space cap); the graph goes over as JSON and the tensors both ways as safetensors
files in a temporary folder, never pickled.
"""

from __future__ import annotations

import json
import os
import tempfile

from fuzz.gen.interpret import InvalidGraph
from fuzz.ir.graph import Graph

TIMEOUT_S = 60.0
MEMORY_HEADROOM = 4 << 30  # bytes of address space the child may add to what it had at fork


def _save(tensors: dict, path: str) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items() if hasattr(v, "detach")}, path)


def _load(path: str) -> dict:
    from safetensors.torch import load_file

    return load_file(path)


def _task(task: dict, soft_deadline: float):
    """In the child: the values of the task's graph, written beside its inputs."""
    from fuzz.gen.interpret import eager_values

    folder = task["folder"]
    with open(os.path.join(folder, "graph.json")) as fh:
        graph = Graph.from_json(json.load(fh))
    try:
        values = eager_values(graph, _load(os.path.join(folder, "inputs.safetensors")))
    except InvalidGraph as exc:
        return f"invalid: {exc}"
    _save(values, os.path.join(folder, "values.safetensors"))
    yield ["ok"]


def eager_values_in_child(graph: Graph, tensors: dict, timeout_s: float = TIMEOUT_S) -> dict:
    """Every tensor's eager CPU value for ``graph`` fed with ``tensors`` (inputs, params, module
    weights); ``InvalidGraph`` when the graph raises, or the child dies or runs out of time."""
    from fuzz.isolation import run_tasks

    with tempfile.TemporaryDirectory(prefix="assay-values-") as folder:
        with open(os.path.join(folder, "graph.json"), "w") as fh:
            json.dump(graph.to_json(), fh)
        _save(tensors, os.path.join(folder, "inputs.safetensors"))
        outcome: dict = {}

        def done(index, items, problem):
            outcome["ok"], outcome["problem"] = items == ["ok"], problem

        run_tasks([{"folder": folder}], _task, workers=1, time_budget=timeout_s, on_result=done,
                  memory_headroom=MEMORY_HEADROOM)
        if not outcome.get("ok"):
            raise InvalidGraph(f"eager run in a child process: {outcome.get('problem') or 'no result'}")
        return _load(os.path.join(folder, "values.safetensors"))
