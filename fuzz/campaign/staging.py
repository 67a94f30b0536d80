"""Turning a failing verdict into a case: the model's files, ``case.json`` and ``repro.py``.

The worker sends each model's files once (the ``model`` event, base64); ``ModelFiles``
keeps them while the model's tests run. ``stage_failure`` builds the ``Case`` of one
failing test and writes it under ``.staging/<id>/`` (``fuzz.campaign.store``); the
re-check then decides whether it becomes a case directory.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from fuzz.campaign import repro
from fuzz.campaign.case import Case
from fuzz.campaign.config import Config, now_iso
from fuzz.campaign.failure import FailureSignature
from fuzz.campaign.store import CrashStore
from fuzz.campaign.verdict import Kind, Verdict
from fuzz.ir.opnames import display_name


class ModelFiles:
    """Per model in flight: its files (base64), operators, and dynamic mode's second call."""

    def __init__(self):
        self.files: dict[int, dict] = {}
        self.ops: dict[int, list] = {}
        self.second: dict[int, tuple] = {}  # (second-call info, files holding its inputs)

    def add(self, ev: dict) -> None:
        m = ev.get("model")
        self.files[m] = ev.get("files") or {}
        self.ops[m] = ev.get("ops") or []
        self.second[m] = (ev.get("second_call"), ev.get("files_dynamic") or {})

    def forget(self, model: int) -> None:
        for d in (self.files, self.ops, self.second):
            d.pop(model, None)


def stage_failure(store: CrashStore, cfg: Config, models: ModelFiles, test_id: str, model: int,
                  verdict: Verdict, failure: FailureSignature, program_dir: str | None) -> Case:
    """Write the case of one failing test under ``.staging/<test_id>/``."""
    files = {k: base64.b64decode(v) for k, v in models.files[model].items()}
    graph = json.loads(files["graph.json"])
    second = None
    if verdict.mode == "dynamic":
        # The verdict says what its second call did; a synthesised one (hang, signal) does not
        # know, so the repro replays the model's second call.
        info, dyn_files = models.second.get(model, (None, {}))
        second = verdict.second_call or info
        if second and second.get("shapes") and not second.get("declined"):
            files.update({k: base64.b64decode(v) for k, v in dyn_files.items()})
    # A repro pays torch start-up and backend warm-up that the worker had paid already.
    timeout = cfg.timeout_s + 120 if verdict.kind != Kind.HANG else 2 * cfg.timeout_s + 10
    case = Case(
        id=test_id,
        test_id=test_id,
        kind=verdict.kind,
        outcome=f"{verdict.kind}: {verdict.detail or ''}".strip(": "),
        detail=verdict.detail or "",
        backend=verdict.backend,
        mode=verdict.mode,
        device=cfg.device,
        signature=failure.id,
        signature_text=failure.text,
        error=verdict.error,
        diff=verdict.diff,
        check=verdict.check or [],
        second_call=second if verdict.mode == "dynamic" else None,
        skip=sorted((verdict.skipped_values or {}).keys()),
        skipped_values=verdict.skipped_values or {},
        ops=[display_name(n["op"], n.get("api"), n.get("overload")) for n in graph.get("nodes", [])],
        graph=graph,
        versions=repro.versions(),
        seed=cfg.seed,
        model=model,
        program_dir=program_dir,
        nodes=cfg.nodes,
        created=now_iso(),
        reproduces=None,
        flaky=False,
        timeout_s=timeout,
        mem_limit_mb=cfg.mem_limit_mb if cfg.device != "cuda" else 0,
        campaign=str(Path(cfg.out).resolve()),
        files=sorted(list(files) + ["repro.py", "case.json"]),
        knobs=verdict.knobs or None,
    )
    src = repro.repro_source(files["program.py"].decode(), case)
    store.stage_case(case, files, src)
    return case
