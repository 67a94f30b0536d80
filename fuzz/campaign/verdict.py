"""What one test came to: the outcome ``Kind`` and the ``Verdict`` that carries it.

One definition for the whole toolkit: the worker judges a test into a ``Verdict``, the
executor makes one for a test whose worker died (``hang`` / ``signal`` / ``oom``), the
campaign journals it, and triage's replays get one back. ``Kind`` is a ``str`` enum, so
its values are the very strings ``case.json``, ``index.sqlite``, ``stats.json`` and the
worker's events have always held.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import Enum


class Kind(str, Enum):
    PASS = "pass"
    # failures: a saved case, a signature
    CRASH = "crash"             # the backend raised where eager did not
    MISMATCH = "mismatch"       # values, shape or dtype differ beyond the oracle's tolerance
    HANG = "hang"               # no verdict within the per-test deadline: the worker was killed
    SIGNAL = "signal"           # the worker died by a signal (e.g. SIGSEGV)
    OOM = "oom"                 # over the memory limit, or an allocation failure raised inside
    # not failures: counted, never saved
    INVALID = "invalid"         # eager itself fails on the model: not a compiler bug
    UNSUPPORTED = "unsupported"  # the backend declines the model or mode (e.g. export of data-dependent shapes)
    SKIP = "skip"               # nothing to judge (no differentiable output, values that may differ)
    ORACLE_ERROR = "oracle_error"  # the oracle itself raised: neither a pass nor a finding about the compiler
    GENFAIL = "genfail"         # the generator could not make the model: no test ran

    def __str__(self) -> str:
        return self.value

    @property
    def failed(self) -> bool:
        return self in FAILURE_KINDS


# The detail of a pass where the oracle judged no value (every output skipped or empty):
# stats.json's ``judged_share`` counts these apart.
NOTHING_JUDGED = "nothing judged"

FAILURE_KINDS = (Kind.CRASH, Kind.MISMATCH, Kind.HANG, Kind.SIGNAL, Kind.OOM)
OUTCOME_KINDS = (Kind.PASS, *FAILURE_KINDS)      # the outcomes stats.json counts under "outcomes"
WORKER_DEATHS = (Kind.HANG, Kind.SIGNAL, Kind.OOM)  # kinds the executor gives a test whose worker died


def kind_of(value) -> Kind:
    """The ``Kind`` a string names; an unknown one (a newer worker?) is a ValueError."""
    return value if isinstance(value, Kind) else Kind(str(value))


@dataclass
class Verdict:
    """One test's outcome. ``to_event`` / ``from_event`` are the worker protocol's verdict
    fields (``fuzz.campaign.worker``); ``None`` fields are left out of the event."""

    kind: Kind
    detail: str = ""
    error: dict | None = None          # {type, message, traceback}
    diff: dict | None = None           # the oracle's description of the worst difference
    check: list | None = None          # the values a repro compares (mismatch)
    skipped_values: dict | None = None  # values not judged, and why
    second_call: dict | None = None    # dynamic mode: what the second call did
    elapsed_s: float | None = None
    backend: str = ""
    mode: str = ""
    codegen: dict | None = None        # inductor: what its output code has (``fuzz.campaign.outputcode``)
    synthesised: bool = False          # made by the executor for a worker that died
    knobs: dict | None = None          # compiler settings the test ran under (fuzz.campaign.knobs)

    def __post_init__(self):
        self.kind = kind_of(self.kind)

    @property
    def failed(self) -> bool:
        return self.kind.failed

    def to_event(self, job: str, test: str) -> dict:
        out = {"event": "verdict", "job": job, "test": test}
        for k, v in asdict(self).items():
            if k == "synthesised":
                if v:
                    out[k] = True
            elif v is not None:
                out[k] = v.value if isinstance(v, Kind) else v
        return out

    @classmethod
    def from_event(cls, ev: dict) -> "Verdict":
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in ev.items() if k in names and v is not None}
        data.setdefault("kind", Kind.SKIP)
        data["detail"] = data.get("detail") or ""
        return cls(**data)


def signed_traceback(exc):
    """The formatted traceback a crash is signed by (``failure.crash_text``); repro.py carries a copy.

    Each part that is not a frame (a message, a chain separator) is cut to its first 2,000
    characters before the whole is cut to its last 12,000: a C++ compile error's message would
    otherwise push out every frame, and a message that quotes another traceback (dynamo's fake-tensor
    errors quote the inner call's stack) would put its quoted frames where the innermost real ones are.
    """
    import traceback

    parts = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "".join(p if p.startswith("  File ") else p[:2000] for p in parts)[-12000:]


def describe_error(exc: BaseException) -> dict:
    """A verdict's ``error``: the exception's qualified type, message and formatted traceback."""
    return {"type": f"{type(exc).__module__}.{type(exc).__qualname__}".replace("builtins.", ""),
            "message": str(exc)[:4000],
            "traceback": signed_traceback(exc)}
