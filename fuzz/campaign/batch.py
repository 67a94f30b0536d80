"""Batched compilation (``assay fuzz --batch K``): K independent models, one program, one compile.

Part of a small model's compile time is paid once per ``torch.compile`` call (dynamo's tracing,
AOT autograd, inductor's lowering and scheduling), not per operator; inductor's C++ build is paid
per kernel (each CPU kernel is its own ``g++`` run, batched or not). So the worker joins the
forward (``fwd``) tests of K models on one backend into one module whose ``forward`` runs the K
models side by side on their own inputs (``Batched``), compiles that once, runs it once, and
judges each model's outputs and written state against that model's own reference
(``Session.judge_fwd``: the oracle sees exactly what a lone run would give it).

A model that passes in the batch has its verdict. Every other outcome is attributed by
running that model alone, as without batching (``Session.run_test``): a failing case is still
one model with a standalone ``repro.py``. When the batch's compile or run raises, it is split
in halves and each half compiled again as a batch (``bisected``), so only the model that raises
(and at most its partner in the last batch of two) runs alone; when a batch kills the worker (a
segfault, a hang, memory), the executor queues the batch's unjudged models again as one-model
jobs (``fuzz.campaign.executor``). A model that fails only inside a batch (never alone) is a
pass: its failure has no standalone repro.

The worker side is ``fuzz.campaign.worker.run_batch``; ``batch_jobs`` groups the job stream.
"""

from __future__ import annotations

import copy
import time

from fuzz.campaign import backends
from fuzz.campaign.copies import clone_inputs
from fuzz.campaign.verdict import Kind, Verdict

BATCHED_MODES = ("fwd",)


def batch_jobs(jobs, size: int):
    """Group a job stream into batch jobs of ``size`` models (a lone job stays as it is).

    A batch job carries its models' jobs (``batch``) and, flattened, all their ``tests``,
    so the executor tracks it like any job."""
    size = max(1, int(size))
    group: list = []
    for job in jobs:
        group.append(job)
        if len(group) == size:
            yield batch_job(group)
            group = []
    if group:
        yield batch_job(group)


def batch_job(group: list) -> dict:
    if len(group) == 1:
        return group[0]
    first = group[0]
    return {"job": f"{first['job']}-batch{len(group)}", "batch": group,
            "tests": [t for job in group for t in job["tests"]], "device": first.get("device", "cpu"),
            "timeout_s": first.get("timeout_s")}


def solo_jobs(job: dict, remaining_tests) -> list[dict]:
    """A batch job's models as one-model jobs again, each with its tests not yet judged."""
    ids = {t["test"] for t in remaining_tests}
    out = []
    for sub in job.get("batch", [job]):
        tests = [t for t in sub["tests"] if t["test"] in ids]
        if tests:
            out.append(dict(sub, tests=tests, job=sub["job"] + "+"))
    return out


def batched_module(modules: list, arities: list[int]):
    """One ``torch.nn.Module`` whose forward takes the K models' inputs, concatenated, and
    returns a tuple of the K models' outputs."""
    import torch

    class Batched(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.parts = torch.nn.ModuleList(modules)

        def forward(self, *inputs):
            outs, start = [], 0
            for part, n in zip(self.parts, arities):
                outs.append(part(*inputs[start:start + n]))
                start += n
            return tuple(outs)

    return Batched()  # each part's program is a module dynamo can import (fuzz.gen.program.exec_source)


def run_batched(sessions: list, backend_name: str, compiles: list | None = None) -> list[Verdict | None]:
    """The ``fwd`` tests of ``sessions``' models on one backend, compiled as one program.

    A ``pass`` Verdict for each model that agrees with its reference (its outputs and the state its
    forward writes); None for a model that must run alone (it differed, or every batch it was
    part of raised, or the backend cannot batch). A batch whose compile or run raises is split in
    halves and each half tried again as a batch (``bisected``), so the models beside the one that
    raises keep their batched verdicts; only a model that raised in a batch of two runs alone.
    ``compiles`` (a list) gets the size of each batch compiled."""
    backend = backends.get(backend_name)
    if "fwd" not in backend.modes:
        return [None] * len(sessions)

    def attempt(group):
        if compiles is not None:
            compiles.append(len(group))
        return judged_batch(group, backend)

    return bisected(sessions, attempt)


def bisected(items: list, attempt) -> list:
    """``attempt(group)``: one result per item of ``group``, or None when the group as a whole
    failed; then each half is attempted again (a group of one is not attempted: None)."""
    if len(items) < 2:
        return [None] * len(items)
    results = attempt(items)
    if results is not None:
        return results
    half = (len(items) + 1) // 2
    return bisected(items[:half], attempt) + bisected(items[half:], attempt)


def judged_batch(sessions: list, backend) -> list[Verdict | None] | None:
    """One compile and run of ``sessions``' models as one program: a pass Verdict or None per
    model, or None when the compile or the run raised."""
    import torch

    inputs = [clone_inputs(s.model.inputs, s.device, fence=s.fence) for s in sessions]  # as a lone test's
    module = batched_module([copy.deepcopy(s.module) for s in sessions], [len(i) for i in inputs])
    flat = [t for i in inputs for t in i]
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            fn = backend.compile_function()(module, flat, dynamic=False)
            outs = fn(*flat)
    except Exception:  # noqa: BLE001 - which model raised is found by bisecting, then alone
        return None
    elapsed = (time.perf_counter() - t0) / len(sessions)
    verdicts: list[Verdict | None] = []
    for session, out, part, part_inputs in zip(sessions, outs, module.parts, inputs):
        j = session.judge_fwd(backend, out, part, part_inputs)
        verdicts.append(Verdict(Kind.PASS, j.detail, elapsed_s=elapsed, skipped_values=j.skipped or None)
                        if j.kind == Kind.PASS else None)
    return verdicts
