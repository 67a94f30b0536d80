"""``triage reduce`` and ``triage recheck``: the parts that run code under test (sandboxed).

Both replay programs in the campaign's worker through ``fuzz.triage.runner`` (one warm
worker per backend and mode), never in this process.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from fuzz.campaign.case import Case
from fuzz.campaign.failure import FailureSignature, sign
from fuzz.campaign.verdict import Verdict
from fuzz.errors import AssayError
from fuzz.ir.graph import Graph
from fuzz.triage.cases import iter_cases, load_case
from fuzz.triage.runner import WorkerRunner

REDUCED_SUFFIX = "-reduced"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def case_timeout(case: Case, override: float | None) -> float:
    """Seconds per replay of ``case``: ``override``, else from its repro's budget, else 60."""
    if override:
        return float(override)
    # case.json's timeout_s is the repro's whole-run budget (test timeout + slack)
    t = case.timeout_s
    return float(min(max(float(t) - 60, 30), 300)) if t else 60.0


def _same_failure(v: Verdict, graph: Graph, target: FailureSignature) -> FailureSignature | None:
    """The replay's signature when it is the failure being reduced (``target``), else None."""
    sig = sign(v, graph.ops())
    same = sig is not None and (sig.reduction_class == target.reduction_class or sig.same_failure(target))
    return sig if same else None


# ---------------------------------------------------------------------------
# reduce


def reduce_case(case: Case, *, time_budget: float = 120.0, timeout: float | None = None, shrink: bool = True,
                log=None, env: dict | None = None, runner: WorkerRunner | None = None) -> dict:
    """Minimise ``case`` and save the result as a new case ``<id>-reduced`` beside it.

    Returns ``{case_id, reduced_case (its directory), ops_before, ops_after, seconds, runs, ...}``.
    """
    from fuzz.triage.reduce import Reducer

    log = log or (lambda m: None)
    if case.reduced_from:
        raise AssayError(f"{case.id} is already a reduced case (of {case.reduced_from}); reduce that one again instead")
    graph = case.program_graph()
    tensors = case.tensors(graph)
    target = case.failure
    t0 = time.monotonic()
    own_runner = runner is None
    if runner is None:
        runner = WorkerRunner(case.backend, case.mode or "fwd", timeout=case_timeout(case, timeout),
                              mem_limit_mb=case.mem_limit_mb or None, env=env, device=case.device or "cpu",
                              knobs=case.knobs)
    verdicts: dict[str, tuple[Verdict, FailureSignature]] = {}
    try:
        log(f"{case.id}: replaying the case ({case.kind} on {case.backend}/{case.mode or 'fwd'}, {len(graph.nodes)} ops)")
        first = runner.run(graph, tensors)
        first_dynamic = runner.last_second_call
        first_sig = _same_failure(first, graph, target)
        if first_sig is None:
            got_sig = sign(first, graph.ops())
            got = f"{first.kind}" + (f" ({got_sig.id})" if got_sig else "")
            raise AssayError(f"case {case.id} does not reproduce its signature with torch {_torch_version()} "
                             f"(got {got}); nothing to reduce ('assay triage recheck {case.id}' records this)")

        def still_fails(g: Graph, t: dict) -> bool:
            v = runner.run(g, t)
            sig = _same_failure(v, g, target)
            log(f"  run {runner.jobs:3d}: {len(g.nodes)} ops -> {v.kind}{' (same failure)' if sig else ''} [{v.elapsed_s:.1f}s]")
            if sig:
                verdicts[_key(g)] = v, sig, runner.last_second_call
            return sig is not None

        remaining = max(5.0, time_budget - (time.monotonic() - t0))
        reducer = Reducer(graph, tensors, still_fails, time_budget=remaining, log=log, shrink=shrink)
        result = reducer.run()
        final = verdicts.get(_key(result.graph)) or (first, first_sig, first_dynamic)
        if final[0] is first and len(result.graph.nodes) != len(graph.nodes):
            v = runner.run(result.graph, result.tensors)
            final = v, sign(v, result.graph.ops()), runner.last_second_call
    finally:
        if own_runner:
            runner.close()
    seconds = time.monotonic() - t0
    path = save_reduced(case, result.graph, result.tensors, final[:2], second_call=final[2], env=env, info={
        "ops_before": len(graph.nodes), "ops_after": len(result.graph.nodes), "seconds": round(seconds, 2),
        "runs": result.tests + 1, "timed_out": result.timed_out, "steps": result.steps,
        "unconfirmed": result.unconfirmed,
    })
    log(f"{case.id}: {len(graph.nodes)} -> {len(result.graph.nodes)} ops in {seconds:.1f}s; saved {path}")
    return {
        "case_id": case.id,
        "reduced_case": str(path),
        "reduced_id": path.name,
        "ops_before": len(graph.nodes),
        "ops_after": len(result.graph.nodes),
        "ops": result.graph.ops(),
        "seconds": round(seconds, 2),
        "runs": result.tests + 1,
        "unconfirmed": result.unconfirmed,
        "timed_out": result.timed_out,
        "signature": final[1].id if final[1] else None,
        "original_signature": case.failure.id,
    }


def _key(g: Graph) -> str:
    return json.dumps(g.to_json(), sort_keys=True)


def _torch_version() -> str:
    try:
        import torch

        return torch.__version__
    except Exception:  # pragma: no cover
        return "?"


def save_reduced(case: Case, graph: Graph, tensors: dict, found: tuple[Verdict, FailureSignature | None],
                 info: dict, env: dict | None = None,
                 second_call: tuple[dict | None, bytes | None] = (None, None)) -> Path:
    """Write the reduced case as a complete case directory through the crash store; its
    ``reproduces`` is what its own ``repro.py`` says, run alone in a fresh sandboxed process
    (true only for the same failure: ``fuzz.campaign.repro.judge_run``).

    ``second_call``: a dynamic-mode case's second call as the run that ``found`` the failure
    made it (``WorkerRunner.last_second_call``): its sizes, and ``inputs.safetensors`` with its
    inputs. The original's second call does not fit the reduced graph's inputs, so it is never kept."""
    import dataclasses
    import tempfile

    from fuzz.campaign import repro
    from fuzz.campaign.store import CrashStore
    from fuzz.gen.program import PROGRAM_FILES, save_program

    verdict, sig = found
    new_id = case.id + REDUCED_SUFFIX
    root = case.path.parent
    with tempfile.TemporaryDirectory(prefix="assay-reduced-") as tmp:
        save_program(graph, tensors, tmp)
        files = {name: (Path(tmp) / name).read_bytes() for name in PROGRAM_FILES}
    sc_info, sc_inputs = second_call
    if case.mode == "dynamic":
        if sc_info and sc_info.get("shapes") and sc_inputs is not None:
            files["inputs.safetensors"] = sc_inputs  # the first call's inputs plus second_call.<name>
        else:
            sc_info = {"none": (sc_info or {}).get("none") or "the reduced model's run made no second call"}
    else:
        sc_info = None
    try:
        from fuzz.gen.interpret import aten_ops

        info = {**info, "aten_ops": aten_ops(graph)}
    except Exception:  # ops without meta kernels: listing falls back to the signature
        pass
    reduced = dataclasses.replace(
        case,
        id=new_id,
        test_id=None,
        kind=verdict.kind,
        outcome=f"{verdict.kind}: {verdict.detail}".strip(": "),
        detail=verdict.detail,
        signature=sig.id if sig else None,
        signature_text=sig.text if sig else "",
        error=verdict.error,
        diff=verdict.diff,
        check=verdict.check or ([verdict.diff["where"]] if verdict.diff and verdict.diff.get("where") else []),
        skip=sorted((verdict.skipped_values or {}).keys()),
        skipped_values=verdict.skipped_values or {},
        ops=graph.ops(),
        graph=graph.to_json(),
        versions=repro.versions(),
        created=_now(),
        reproduces=True,
        flaky=False,
        files=sorted(list(files) + ["repro.py", "case.json"]),
        triage={"reduced_from": case.id, **info},
        second_call=sc_info,
        path=None,
    )
    src = repro.repro_source(files["program.py"].decode(), reduced)
    store = CrashStore(root)
    try:
        staged = store.stage_case(reduced, files, src)
        reproduces, note = _run_repro(reduced, staged, env)
        path = store.finalize(new_id, reproduces, f"reduced from {case.id}; its repro.py: {note}")
    finally:
        store.close()
    # the original points at its reduced case
    update_case(case.path, lambda c: setattr(c, "triage", {**(c.triage or {}), "reduced_case": new_id,
                                                           "ops_after": info["ops_after"], "reduced_at": _now()}))
    return path


def _run_repro(case: Case, folder: Path, env: dict | None) -> tuple[bool | None, str]:
    """Run ``folder/repro.py`` alone in a sandboxed process: (reproduces, what it said)."""
    import os
    import sys

    from fuzz.campaign import repro, sandbox

    env = dict(os.environ if env is None else env)
    timeout = float(case.timeout_s or 300) + 60
    res = sandbox.run([sys.executable, str(folder / "repro.py")], timeout, case.mem_limit_mb or None, cwd=str(folder),
                      env=env)
    outcome = repro.judge_run(case, None if res.timed_out else res.returncode, res.stdout, res.stderr, res.timed_out)
    last = (res.stdout.strip().splitlines() or [""])[-1][:200]
    return {"reproduced": True, "agree": False, "different": False}.get(outcome), f"{outcome} ({last})"


def update_case(path: Path, change) -> Case:
    """Apply ``change(case)`` to a saved case and rewrite its case.json atomically (re-indexed in the store)."""
    from fuzz.campaign.case import read_case
    from fuzz.campaign.store import CrashStore, atomic_write

    case = read_case(path)
    change(case)
    atomic_write(Path(path) / "case.json", case.dumps())
    try:
        store = CrashStore(Path(path).parent, create=False)
        try:
            store.index_case(case, Path(path))
        finally:
            store.close()
    except Exception:  # the index is a cache of the case files; a failure here loses nothing
        pass
    return case


# ---------------------------------------------------------------------------
# recheck


def select_cases(root, ids: list[str], all_cases: bool) -> list[Case]:
    if ids:
        return [load_case(root, i) for i in ids]
    cases = iter_cases(root)
    if all_cases:
        return cases
    # one case per signature (the earliest), plus every reduced case
    seen, out = set(), []
    for c in sorted(cases, key=lambda c: (str(c.created or ""), c.id)):
        if c.reduced_from:
            out.append(c)
        elif c.failure.id not in seen:
            seen.add(c.failure.id)
            out.append(c)
    return out


def recheck(root, ids: list[str] = (), *, all_cases: bool = False, timeout: float | None = None,
            log=None, env: dict | None = None) -> list[dict]:
    """Replay cases against the installed torch; mark each fixed / still failing / changed."""
    log = log or (lambda m: None)
    cases = select_cases(root, list(ids), all_cases)
    if not cases:
        raise AssayError(f"no saved cases in {root}")
    groups: dict[tuple, list[Case]] = {}
    for c in cases:  # one worker per configuration: a case replays under the compiler settings it was found with
        knobs = json.dumps(c.knobs or {}, sort_keys=True)
        groups.setdefault((c.backend, c.mode or "fwd", c.device or "cpu", knobs), []).append(c)
    results = []
    torch_v = _torch_version()
    for (backend, mode, device, _), members in groups.items():
        t = max(case_timeout(c, timeout) for c in members)
        with WorkerRunner(backend, mode, timeout=t, mem_limit_mb=max(c.mem_limit_mb or 0 for c in members) or None,
                          env=env, device=device, knobs=members[0].knobs) as runner:
            for c in members:
                try:
                    if c.damage():
                        raise AssayError(c.damage())
                    graph = c.program_graph()
                    c.tensors(graph)  # fail early with a one-line error when tensors are missing/corrupt
                except AssayError as exc:
                    results.append({"case_id": c.id, "status": "unreadable", "reproduces": None, "error": str(exc)})
                    log(f"{c.id}: unreadable ({exc})")
                    continue
                v = runner.run_dir(c.path)
                sig = sign(v, graph.ops())
                status, excused = recheck_status(c, v, sig)
                rec = {"status": status, "reproduces": status == "open", "kind": v.kind.value,
                       "signature": sig.id if sig else None, "at": _now(), "torch": torch_v,
                       "seconds": round(v.elapsed_s, 2)}
                if excused:
                    rec["excused"] = excused
                if status == "changed":
                    rec["new_signature_text"] = sig.text
                    rec["error"] = v.error

                def change(case, rec=rec):
                    case.triage = {**(case.triage or {}), "recheck": rec}
                    case.reproduces = rec["reproduces"]

                update_case(c.path, change)
                results.append({"case_id": c.id, "signature": c.failure.id, "backend": backend, "mode": mode, **rec})
                log(f"{c.id}: {status} ({v.kind}{', ' + sig.id if sig and status == 'changed' else ''})")
    return results


def recheck_status(case: Case, verdict, sig) -> tuple[str, str]:
    """A re-run's status: ``open`` (same signature), ``changed`` (another failure), ``excused``
    (it passes only because today's oracle no longer judges the value that differed: not a
    fix in torch; the second item says why), or ``fixed``."""
    if sig is not None:
        return ("open" if sig.same_failure(case.failure) else "changed"), ""
    where = (case.diff or {}).get("where")
    why = (verdict.skipped_values or {}).get(where) if where else None
    if why:
        return "excused", f"{where}: {why}"
    return "fixed", ""


def render_recheck(results: list[dict]) -> str:
    if not results:
        return "nothing re-checked"
    width = max(len(r["case_id"]) for r in results)
    lines = []
    label = {"open": "still fails", "fixed": "FIXED", "changed": "changed signature", "unreadable": "unreadable",
             "excused": "not judged by today's oracle"}
    for r in results:
        extra = ""
        if r["status"] == "excused":
            extra = f"  ({r.get('excused')})"
        elif r["status"] == "changed":
            extra = f"  now: {r.get('kind')} {r.get('signature')}"
        elif r["status"] == "unreadable":
            extra = f"  {r.get('error')}"
        lines.append(f"{r['case_id'].ljust(width)}  {label.get(r['status'], r['status'])}{extra}")
    counts = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines.append(", ".join(f"{n} {label.get(k, k)}" for k, n in counts.items()) + f"  (torch {_torch_version()})")
    return "\n".join(lines)
