"""Which of a case's compiler knobs it needs: its ``repro.py`` re-run with each knob left at
torch's default (``ASSAY_REPRO_WITHOUT``, see ``fuzz.campaign.knobs``), each run alone in a
sandboxed process.

A knob is *needed* when the repro without it agrees (exit 0), *not needed* when the failure
still reproduces (exit 1); anything else (another failure, a timeout, cannot run) leaves it
*unknown*, and so is every knob of a case recorded as not reproducing in a fresh process
(``reproduces`` false: its repro agrees with the knobs set too, so an agreeing run without one
says nothing; such a case is not re-run). The result is kept in the case's ``case.json``
(``triage.knobs``) so ``assay triage show`` runs it once per case.
"""

from __future__ import annotations

import os
import sys
import time

from fuzz.campaign import repro, sandbox
from fuzz.campaign.case import Case
from fuzz.campaign.knobs import ENV_WITHOUT

VERDICT = {"agree": "needed", "reproduced": "not needed"}
NOT_REPRODUCING = "unknown (the case does not reproduce in a fresh process, knobs set or not)"


def ablate(case: Case, timeout: float | None = None, log=None) -> dict:
    """``{"at", "knobs": {name: {"needed": True/False/None, "said", "seconds"}}}`` for every knob of the case."""
    log = log or (lambda m: None)
    script = case.path / "repro.py"
    limit = float(timeout or (case.timeout_s or 300) + 60)
    out = {}
    for name in sorted(case.knobs or {}):
        if case.reproduces is False:
            out[name] = {"needed": None, "said": NOT_REPRODUCING, "seconds": 0.0}
            continue
        env = dict(os.environ, **{ENV_WITHOUT: name})
        res = sandbox.run([sys.executable, str(script)], limit, case.mem_limit_mb or None, cwd=str(case.path), env=env)
        outcome = repro.judge_run(case, None if res.timed_out else res.returncode, res.stdout, res.stderr, res.timed_out)
        said = VERDICT.get(outcome, f"unknown ({outcome})")
        out[name] = {"needed": {"agree": True, "reproduced": False}.get(outcome), "said": said,
                     "seconds": round(res.elapsed_s, 1)}
        log(f"{case.id}: without {name}: {outcome} -> {said} [{res.elapsed_s:.1f}s]")
    return {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "knobs": out}


def knob_lines(case: Case) -> list[str]:
    """``assay triage show``'s lines on the case's knobs (with the ablation, when it has run)."""
    if not case.knobs:
        return []
    found = ((case.triage or {}).get("knobs") or {}).get("knobs") or {}
    lines = ["\ncompiler knobs (the case was found with these set; repro.py sets them too):"]
    for name, settings in sorted(case.knobs.items()):
        verdict = found.get(name, {}).get("said", "not ablated")
        lines.append(f"  {name:<24} {', '.join(f'{k}={v!r}' for k, v in settings.items())}   -> {verdict}")
    return lines
