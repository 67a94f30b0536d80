"""A long-lived test worker: one model at a time, every backend and mode on it.

The campaign starts workers as child processes (``python -m fuzz.campaign.worker``, see
``fuzz.campaign.executor``); each imports torch and warms the backends up once, then reads
*jobs* (one JSON object per line on stdin) and writes *events* (one JSON object per
line on the result pipe). Nothing under test runs in the driver.

A job::

    {"job": "s1-m000042", "model": 42, "seed": 1, "nodes": 5,
     "source": {"gen": {"seed": 1234}} | {"program_dir": "/path/to/program"},
     "tests": [{"test": "s1-m000042-inductor-fwd", "backend": "inductor", "mode": "fwd"}, ...],
     "device": "cpu", "timeout_s": 60}

Events, in order, for one job::

    {"event": "begin", "job", "test": null, "phase": "prepare"}
    {"event": "model", "job", "model", "ops": [...], "nodes": n, "files": {name: base64}}  (or "ok": false)
    {"event": "begin", "job", "test", "phase": "test"}                   per test, then
    {"event": "verdict", "job", "test", "backend", "mode", "kind", "detail", "error", "diff", ...}
    {"event": "done", "job"}

A batch job (``--batch K``, ``fuzz.campaign.batch``) holds K such jobs under ``batch`` (and all
their tests, flattened, under ``tests``): each model is prepared as above (its own ``begin``,
``model`` events), then per backend ``{"event": "begin", "job": <batch id>, "test": null,
"phase": "batch"}`` while the K models' ``fwd`` tests compile as one program; passes get their
verdicts, every other test runs alone (``begin``/``verdict`` as above); a ``done`` per model,
then one for the batch job.

A verdict event is ``fuzz.campaign.verdict.Verdict.to_event``; its ``kind`` is a ``Kind``
(pass, crash, mismatch, oom: an allocation failure raised inside the worker; invalid:
eager itself fails; genfail: the generator could not make this model, no test ran;
unsupported: the backend declines the model or mode; skip). The executor makes the
hang, signal and oom verdicts of a test whose worker died or was killed.

The model is built once per job and shared by its tests (``fuzz.campaign.session.Session``:
the eager and float64 references, each backend compiling its own copy of the module).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from fuzz.campaign import outputcode
from fuzz.campaign.oracle import OracleError
from fuzz.campaign import feedback, knobs
from fuzz.campaign.error_session import ErrorSession, is_error_program
from fuzz.campaign.session import Model, Session
from fuzz.campaign.verdict import Kind, Verdict, describe_error
from fuzz.isolation import limit_address_space, private_compile_cache


# ---------------------------------------------------------------------------
# models


def generate_model(seed: int, index: int, nodes: int, shares: dict | None = None):
    """(graph, tensors) of model ``index`` of a campaign with ``seed`` (same as ``assay gen --seed``
    with the same policy shares; ``shares`` None: the legacy mix, as campaigns before policies)."""
    from fuzz.gen.config import GenConfig
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.policy import Shares
    from fuzz.gen.ruleset import load_ruleset

    result = generate_model_for_index(load_ruleset(), GenConfig(nodes=nodes), seed, index,
                                      Shares.from_json(shares))
    return result.graph, result.tensors()


def load_model(job: dict) -> Model:
    from fuzz.gen import program

    source = job["source"]
    if "program_dir" in source:
        path = Path(source["program_dir"])
        graph, module, inputs = program.load_program(path)
        files = {name: (path / name).read_bytes() for name in program.PROGRAM_FILES}
        return Model(graph, module, inputs, files)
    if "gen" in source or "mutant" in source:
        if "gen" in source:
            gen = source["gen"]
            graph, tensors = generate_model(int(gen["seed"]), int(gen["index"]), int(job.get("nodes", 5)),
                                           gen.get("shares"))
        else:  # a guided campaign's mutant of a seed (fuzz.campaign.seeds)
            from fuzz.gen.mutate import mutant_model

            graph, tensors = mutant_model(source["mutant"], int(job.get("nodes", 5)))
        with tempfile.TemporaryDirectory(prefix="assay-model-") as tmp:
            program.save_program(graph, tensors, tmp)
            files = {name: (Path(tmp) / name).read_bytes() for name in program.PROGRAM_FILES}
            # Run exactly what was saved: the program's own code and tensors.
            graph, module, inputs = program.load_program(tmp)
        return Model(graph, module, inputs, files)
    raise ValueError(f"job has no model source: {source}")


# ---------------------------------------------------------------------------
# the job loop


def run_job(job: dict, emit) -> None:
    """Run one job, reporting through ``emit(event_dict)``; a batch job (``batch``) is ``run_batch``."""
    if "batch" in job:
        run_batch(job, emit)
        return
    session = prepare(job, emit)
    if session is not None:
        run_tests(job, session, job["tests"], emit)
    emit({"event": "done", "job": job["job"]})


def run_batch(job: dict, emit) -> None:
    """A batch job: its models prepared one by one, then per backend their ``fwd`` tests compiled
    as one program (``fuzz.campaign.batch.run_batched``); every test not passed there runs alone."""
    from fuzz.campaign.batch import BATCHED_MODES, run_batched

    ready = []
    for sub in job["batch"]:
        session = prepare(sub, emit)
        if session is None:
            emit({"event": "done", "job": sub["job"]})
        else:
            ready.append((sub, session))
    judged = set()
    # A model under compiler knobs (a guided campaign's mutant), or one that needs settings of its
    # own (dynamo's capture flags, knobs.model_knobs), compiles alone, under them; one whose
    # unchecked indexing is out of range is not compiled at all (Session.undefined_indexing).
    plain = [(sub, s) for sub, s in ready if not sub.get("knobs") and not knobs.model_knobs(s.model.graph.meta)
             and not is_error_program(s.model.graph)  # a program eager rejects: nothing to batch
             and not getattr(s, "undefined_indexing", None)]
    for backend in dict.fromkeys(t["backend"] for sub, _ in plain for t in sub["tests"] if t["mode"] in BATCHED_MODES):
        group = [(sub, s, t) for sub, s in plain for t in sub["tests"]
                 if t["backend"] == backend and t["mode"] in BATCHED_MODES]
        if len(group) < 2:
            continue
        emit({"event": "begin", "job": job["job"], "test": None, "phase": "batch", "log_offset": _log_offset()})
        compiles: list[int] = []
        verdicts = run_batched([s for _, s, _ in group], backend, compiles)
        how = "one compile" if len(compiles) == 1 else f"{len(compiles)} batched compiles (sizes {compiles})"
        print(f"assay batch {job['job']}: {backend}: {sum(v is not None for v in verdicts)}/{len(group)} passed in "
              f"{how}; the others run alone", file=sys.stderr, flush=True)
        for (sub, _, t), verdict in zip(group, verdicts):
            if verdict is not None:
                verdict.backend, verdict.mode = t["backend"], t["mode"]
                emit(_event(verdict, sub["job"], t["test"]))
                judged.add(t["test"])
    for sub, session in ready:
        run_tests(sub, session, [t for t in sub["tests"] if t["test"] not in judged], emit)
        emit({"event": "done", "job": sub["job"]})
    emit({"event": "done", "job": job["job"]})


def prepare(job: dict, emit):
    """Build the job's model and its references (the ``model`` event): the ``Session``, or None
    when the generator or eager failed (then every test of the job has its verdict)."""
    jid = job["job"]
    emit({"event": "begin", "job": jid, "test": None, "phase": "prepare", "log_offset": _log_offset()})
    device = job.get("device", "cpu")
    stage = "generate"
    try:
        model = load_model(job)
        stage = "eager"
        session = (ErrorSession if is_error_program(model.graph) else Session)(model, device)
    except Exception as exc:
        err = describe_error(exc)
        emit({"event": "model", "job": jid, "model": job.get("model"), "ok": False, "error": err})
        # genfail: no model to test (not counted as tests); invalid: eager itself fails on it;
        # oracle_error: the oracle's own analysis of the references raised
        kind = Kind.GENFAIL if stage == "generate" else Kind.INVALID
        detail = (f"generator failed: {err['type']}: {err['message'][:200]}" if stage == "generate"
                  else f"eager raised {err['type']}: {err['message'][:200]}")
        if isinstance(exc, OracleError):
            kind, detail = Kind.ORACLE_ERROR, f"oracle raised {err['message'][:200]}"
        for t in job["tests"]:
            emit(Verdict(kind, detail, error=err, backend=t["backend"], mode=t["mode"]).to_event(jid, t["test"]))
        return None
    event = {"event": "model", "job": jid, "model": job.get("model"), "ok": True, "ops": model.graph.ops(),
             "nodes": len(model.graph.nodes),
             "files": {k: base64.b64encode(v).decode() for k, v in model.files.items()},
             "sensitive": session.sensitive}
    if any(t["mode"] == "dynamic" for t in job["tests"]):
        # Found here, in the prepare phase: eager dying at the new sizes is not a backend's fault.
        event["second_call"] = session.second_call()[2]
        try:
            data = session.inputs_file()
        except Exception as exc:
            data = None
            event["second_call"] = {"none": f"cannot save the second call's inputs: {exc}"[:300]}
        if data is not None:
            event["files_dynamic"] = {"inputs.safetensors": base64.b64encode(data).decode()}
    emit(event)
    return session


def run_tests(job: dict, session, tests: list, emit) -> None:
    """Each test alone: its own compile of the model, judged (``Session.run_test``), under the
    job's knobs, its inductor output code read and, in a guided campaign, its compiler feedback."""
    mode = job.get("feedback", "off")
    for t in tests:
        emit({"event": "begin", "job": job["job"], "test": t["test"], "phase": "test", "log_offset": _log_offset()})
        with feedback.observe(mode, lines=bool(job.get("coverage"))) as obs, knobs.applied(job.get("knobs")):
            try:
                with outputcode.capture() as loaded:
                    verdict = session.run_test(t["backend"], t["mode"])
                verdict.codegen = outputcode.summarise(loaded)
            except Exception as exc:  # the oracle itself failed: its own kind (not a pass, not a finding)
                verdict = Verdict(Kind.ORACLE_ERROR, f"oracle raised {type(exc).__name__}{_where(exc)}",
                                  error=describe_error(exc))
        verdict.backend, verdict.mode = t["backend"], t["mode"]
        verdict.knobs = job.get("knobs") or None
        extra = obs.to_event() if mode != "off" else None
        emit(_event(verdict, job["job"], t["test"], extra))
        spoiled = spoiled_state()
        if spoiled:
            # Nothing after this test may run in this process: the executor queues the job's other
            # tests again and starts a fresh worker (this one exits).
            print(f"assay worker: test {t['test']} left {spoiled}; restarting", file=sys.stderr, flush=True)
            emit({"event": "restart", "job": job["job"], "why": f"test {t['test']} left {spoiled}"})  # flushed
            os._exit(0)


def _where(exc: BaseException) -> str:
    """`` at fuzz/<file>:<line> (<function>)``: the last of Assay's own frames the exception passed,
    so that an oracle error in the journal says which of the oracle's steps raised it."""
    import traceback

    own = [f for f in traceback.extract_tb(exc.__traceback__) if f"{os.sep}fuzz{os.sep}" in f.filename]
    if not own:
        return ""
    f = own[-1]
    return f" at fuzz{f.filename.rsplit(os.sep + 'fuzz', 1)[1]}:{f.lineno} ({f.name})"


def spoiled_state() -> str | None:
    """What a test left behind that spoils every later test in this process, or None.

    A compile that raises inside a torch.func transform can leave the transform's level on
    functorch's stack (a failed AOTInductor compile of a ``torch.func.hessian`` model did: depth 3,
    and forward AD's dual level too). Every tensor the process makes after that is a functorch
    wrapper: the next test's inputs raise "Cannot access storage of TensorWrapper" and the
    generator's random draws "vmap: called random operation while in randomness error mode" (a
    campaign made 5,000 genfails of that in 10 minutes before this check)."""
    import torch

    depth = torch._C._functorch.get_dynamic_layer_stack_depth()
    return f"torch.func's transform stack at depth {depth}" if depth else None


def _event(verdict: Verdict, job_id: str, test_id: str, extra: dict | None = None) -> dict:
    event = verdict.to_event(job_id, test_id)
    event.update(extra or {})
    return json.loads(json.dumps(event, default=_json_default))


def _log_offset() -> int | None:
    """Size of the worker's log (stderr) now: the executor reads a dead worker's log from here."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        return os.fstat(2).st_size
    except (OSError, ValueError):
        return None


def _json_default(o):
    if isinstance(o, float):
        return repr(o)
    return str(o)


def warm_up(backend_names, device="cpu") -> dict:
    """Compile a tiny model once per backend so the first real test does not pay start-up."""
    import torch

    from fuzz.campaign import backends

    times = {}
    for name in backend_names:
        b = backends.get(name)
        if b.test_only:
            continue
        t0 = time.perf_counter()
        try:
            m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval().to(device)
            x = torch.randn(2, 4, device=device)
            with torch.no_grad():
                b.compile_function()(m, [x])(x)
        except Exception:
            pass
        times[name] = round(time.perf_counter() - t0, 2)
    return times


def _exit_when_orphaned() -> None:
    """Leave at once when the process that started this worker is gone (a driver killed with
    kill -9, a Ray actor killed with its node or at shutdown): a test that hangs must not keep
    an orphaned worker busy forever. (Its stdin closing only ends the job loop after the test.)"""
    import threading

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="orphan-watch").start()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fuzz.campaign.worker")
    ap.add_argument("--result-fd", type=int, required=True)
    ap.add_argument("--mem-limit-mb", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backends", default="")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    limit_address_space(args.mem_limit_mb)  # before torch maps anything
    private_compile_cache()  # a killed compile's half-written kernel stays with this worker
    out = os.fdopen(args.result_fd, "w", buffering=1)

    def emit(event):
        out.write(json.dumps(event) + "\n")
        out.flush()

    import torch

    torch.set_num_threads(max(1, args.threads))
    try:
        import torch._inductor.config as inductor_config

        inductor_config.compile_threads = 1  # no compile subprocess pool per worker
    except Exception:
        pass
    import faulthandler

    faulthandler.enable()  # a segfault leaves a Python stack in the worker log
    _exit_when_orphaned()
    warm = warm_up([b for b in args.backends.split(",") if b], args.device)
    emit({"event": "ready", "pid": os.getpid(), "warmup_s": warm, "torch": torch.__version__})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        job = json.loads(line)
        if job.get("stop"):
            break
        run_job(job, emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
