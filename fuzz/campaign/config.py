"""A campaign's settings: ``Config``, its ``campaign.json``, and reading ``--time``-style durations.

``campaign.json`` keeps the settings that define the campaign (``SETTINGS``: a different
value on resume is an error) and those a flag given on resume may change
(``SOFT_SETTINGS``).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fuzz.campaign.store import atomic_write
from fuzz.errors import AssayError
from fuzz.gen.policy import Shares


def parse_duration(text: str) -> float:
    """``90`` / ``90s`` / ``30m`` / ``8h`` / ``1h30m`` -> seconds."""
    t = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise AssayError(f"cannot read duration {text!r}; use seconds or e.g. 30s, 30m, 8h, 1h30m")
    mult = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(a) * mult[b] for a, b in parts)


def default_mem_limit_mb(workers: int) -> int:
    try:
        import psutil

        total = psutil.virtual_memory().total // 2**20
    except Exception:  # pragma: no cover
        total = 16384
    return int(max(2048, min(8192, total // (workers + 1))))


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Config:
    out: str
    time_s: float = 600
    workers: int = 2
    backends: list = field(default_factory=lambda: ["inductor", "aot_eager"])
    # the default mix: each generated model gets ``modes_per_model`` of these, drawn by (seed, index)
    modes: list = field(default_factory=lambda: ["fwd", "bwd", "dynamic", "train"])
    modes_per_model: int = 1        # 0: every mode on every model (campaigns saved before the draw)
    seed: int = 0
    nodes: int = 5
    device: str = "cpu"
    timeout_s: float = 90
    mem_limit_mb: int = 0
    programs: str | None = None     # test saved programs instead of generating
    keep_per_signature: int = 3     # case directories kept per signature (all are counted)
    recheck: bool = True
    recheck_grace_s: float = 600    # at the end, wait up to this long for pending re-checks
    recheck_threads: int = 2
    status_every_s: float = 30      # plain progress line interval when stderr is not a TTY
    fail_on_find: bool = False      # exit 1 when this run found a signature the campaign had not seen
    explicit: set = field(default_factory=set)  # settings given as flags this run (vs. saved ones)
    # the model policy shares (``fuzz.gen.policy.Shares.to_json``); None: the legacy mix
    shares: dict | None = field(default_factory=lambda: Shares().to_json())
    feedback: str = "counters"      # off | counters | coverage (fuzz.campaign.feedback, fuzz.campaign.seeds)
    knobs: list = field(default_factory=list)  # compiler knobs set for every test (fuzz.campaign.knobs)
    shard: list | None = None       # [I, N]: this campaign runs the models with index % N == I - 1
    batch: int = 1                  # models compiled together per fwd compile (fuzz.campaign.batch)
    executor: str = "local"         # where workers run: "local" processes or "ray" actors (not saved)
    address: str = "auto"           # the Ray cluster (--address)

    SETTINGS = ("backends", "modes", "modes_per_model", "seed", "nodes", "device", "programs", "shares", "shard")
    # kept for --resume too, but a flag given on resume overrides them. time_s is the campaign's
    # whole budget: a resume without --time runs what is left of it (see ``session_seconds``).
    SOFT_SETTINGS = ("keep_per_signature", "timeout_s", "mem_limit_mb", "time_s", "feedback", "knobs", "batch")


def parse_shard(text: str) -> list[int]:
    """``I/N`` (1 <= I <= N) -> ``[I, N]``: the I-th of N disjoint slices of a campaign's models."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise AssayError(f"cannot read shard {text!r}; use I/N with 1 <= I <= N, e.g. 3/8")
    return [int(m.group(1)), int(m.group(2))]


def load_or_create(cfg: Config, resume: bool, stream) -> None:
    """Continue the campaign in ``cfg.out`` (its saved settings into ``cfg``) or start one there."""
    out = Path(cfg.out)
    path = out / "campaign.json"
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise AssayError(f"{path}: corrupt campaign settings ({exc})") from None
        explicit = cfg.explicit
        for key in Config.SETTINGS:
            if key in explicit and saved.get(key) != getattr(cfg, key):
                raise AssayError(f"{out} holds a campaign with {key}={saved.get(key)!r}; "
                                 f"continue it without --{key}, or use another --out")
            if key in saved:
                setattr(cfg, key, saved[key])
        if "shares" not in saved:
            cfg.shares = None  # a campaign started before model policies: it goes on with the legacy mix
        if "modes_per_model" not in saved:
            cfg.modes_per_model = 0  # started before the per-model draw: every mode on every model, as then
        for key in Config.SOFT_SETTINGS:
            if key in saved and key not in explicit:
                setattr(cfg, key, saved[key])
        if "time_s" not in saved and "time_s" not in explicit:
            cfg.time_s = 600.0  # written before budgets were saved: the default, as it ran then
        if not resume:
            stream.write(f"assay: continuing the campaign in {out} (seed {cfg.seed})\n")
    elif resume:
        raise AssayError(f"{out} holds no campaign to resume (no campaign.json); start one with --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in asdict(cfg).items() if k in Config.SETTINGS + Config.SOFT_SETTINGS}
        data["created"] = now_iso()
        atomic_write(path, json.dumps(data, indent=1) + "\n")


def created_at(out) -> str | None:
    """When the campaign in ``out`` was started (``campaign.json``'s ``created``), or None."""
    try:
        data = json.loads((Path(out) / "campaign.json").read_text())
    except (OSError, ValueError):
        return None
    return data.get("created") if isinstance(data, dict) else None


def session_seconds(cfg: Config, elapsed_before: float) -> float:
    """How long this run may take, and the campaign's budget saved for the next ``--resume``.

    A new campaign runs ``--time``. A continued one runs ``--time`` more if given (its budget
    grows to what has run plus that), else what is left of its saved budget.
    """
    if "time_s" in cfg.explicit and elapsed_before > 0:
        session, total = cfg.time_s, elapsed_before + cfg.time_s
    else:
        session, total = max(0.0, cfg.time_s - elapsed_before), cfg.time_s
    path = Path(cfg.out) / "campaign.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("time_s") != total:
        data["time_s"] = total
        atomic_write(path, json.dumps(data, indent=1) + "\n")
    return session
