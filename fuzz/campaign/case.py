"""A saved case: the one type behind every ``case.json`` (campaign, store and triage).

``Case.to_json()`` writes the fields in the order the campaign has always written them
(see docs/campaign.md for what each holds); ``Case.from_json`` reads any case.json the
campaign or triage wrote, older ones included: missing fields take their defaults, keys
it does not know are kept in ``extra`` and written back unchanged. ``read_case(path)``
reads a case directory (or its case.json) with one-line errors. The case's directory
(``path``) is not part of the JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from fuzz.campaign.failure import FailureSignature
from fuzz.campaign.verdict import Kind
from fuzz.errors import AssayError
from fuzz.ir.graph import Graph

# Dynamic mode's second call: its inputs are saved in inputs.safetensors under these keys (written
# by ``fuzz.campaign.session``, read by the repro); they are not tensors of the program.
SECOND_CALL_PREFIX = "second_call."

CASE_FORMAT_VERSION = 1
CASE_FILE = "case.json"
TENSOR_FILES = ("inputs.safetensors", "params.safetensors")
# written only when set (older cases lack them; a dynamic-mode case has a second_call)
_OPTIONAL = ("second_call", "recheck", "triage", "digests", "knobs")
# numeric fields and the JSON types each may hold; NaN, Infinity and 1e999 (read as inf) are refused
_NUMBERS = {"format": int, "seed": int, "model": int, "nodes": int, "mem_limit_mb": (int, float),
            "timeout_s": (int, float)}


@dataclass(kw_only=True)
class Case:
    format: int = CASE_FORMAT_VERSION
    id: str
    test_id: str | None = None
    kind: Kind
    outcome: str = ""
    detail: str = ""
    backend: str = ""
    mode: str = "fwd"
    device: str = "cpu"
    signature: str | None = None
    signature_text: str = ""
    error: dict | None = None
    diff: dict | None = None
    check: list = field(default_factory=list)
    second_call: dict | None = None
    skip: list = field(default_factory=list)
    skipped_values: dict = field(default_factory=dict)
    ops: list = field(default_factory=list)
    graph: dict | None = None
    versions: dict | None = None
    seed: int | None = None
    model: int | None = None
    program_dir: str | None = None
    nodes: int | None = None
    created: str | None = None
    reproduces: bool | None = None
    flaky: bool = False
    timeout_s: float | None = None
    mem_limit_mb: int | None = None
    campaign: str | None = None
    files: list = field(default_factory=list)
    digests: dict | None = None        # file name -> sha256 of the files beside case.json (written first)
    recheck: str | None = None         # the campaign's re-check note
    triage: dict | None = None         # what triage did: reduced_from / reduced_case, recheck, aten_ops
    knobs: dict | None = None          # compiler settings it was found under: {name: {setting: value}}
    extra: dict = field(default_factory=dict)   # keys this version does not know, kept as they were
    path: Path | None = field(default=None, compare=False)  # the case directory (not in the JSON)

    def __post_init__(self):
        self.kind = Kind(str(self.kind))

    # -- JSON ---------------------------------------------------------------------
    def to_json(self) -> dict:
        out = {}
        for f in fields(self):
            if f.name in ("extra", "path"):
                continue
            value = getattr(self, f.name)
            if f.name in _OPTIONAL and value is None and not (f.name == "second_call" and self.mode == "dynamic"):
                continue
            out[f.name] = value.value if isinstance(value, Kind) else value
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: dict, path: Path | None = None) -> "Case":
        where = path or "case.json"
        if not isinstance(data, dict) or "id" not in data or "kind" not in data:
            raise AssayError(f"{where}: not a case (needs at least 'id' and 'kind')")
        try:
            kind = Kind(str(data["kind"]))
        except ValueError:
            raise AssayError(f"{where}: unknown case kind {data['kind']!r}") from None
        known = {f.name for f in fields(cls)} - {"extra", "path"}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        values.update(id=str(data["id"]), kind=kind)
        for key in ("outcome", "detail", "signature_text"):
            values[key] = str(values.get(key) or "")
        for key, kinds in (("check", list), ("skip", list), ("files", list), ("skipped_values", dict),
                           ("error", dict), ("diff", dict), ("graph", dict), ("versions", dict), ("triage", dict),
                           ("second_call", dict), ("digests", dict)):
            if key in values and not isinstance(values[key], kinds):
                values.pop(key)
        if not isinstance(values.get("ops"), list):
            values.pop("ops", None)
        for key, kinds in _NUMBERS.items():
            value = values.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)
                                      or not math.isfinite(value)):
                raise AssayError(f"{where}: field {key!r} is {value!r}, not a finite number "
                                 "(the file was damaged or hand-edited: restore it, or delete the field)")
        for key in ("flaky",):
            if key in values and not isinstance(values[key], bool):
                raise AssayError(f"{where}: field {key!r} is {values[key]!r}, not true or false")
        case = cls(**values, extra={k: v for k, v in data.items() if k not in known}, path=path)
        if "ops" not in values and case.graph is not None:
            try:
                case.ops = Graph.from_json(case.graph).ops()
            except (ValueError, KeyError, TypeError):
                case.ops = []
        case.ops = [str(o) for o in case.ops]
        return case

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, default=str) + "\n"

    # -- what triage asks ---------------------------------------------------------
    @property
    def failure(self) -> FailureSignature:
        """The case's signature (``unsigned:<id>`` for a case that has none)."""
        return FailureSignature(self.signature or f"unsigned:{self.id}", self.signature_text, str(self.kind),
                                self.backend or "?", self.mode or "fwd")

    def damage(self) -> str:
        """Why the case's files cannot be trusted ('' when they match the digests in case.json).

        ``case.json`` is written last, so its digests say what every other file held when the
        case was complete: a file missing or changed since (a torn write after a power loss, a
        disk error, a hand edit) makes the case corrupt, never reproduced. Cases written before
        digests existed are not checked.
        """
        import hashlib

        if not self.digests or self.path is None:
            return ""
        for name, want in sorted(self.digests.items()):
            file = self.path / str(name)
            try:
                got = hashlib.sha256(file.read_bytes()).hexdigest()
            except FileNotFoundError:
                return f"case {self.id}: {name} is missing"
            except OSError as exc:
                return f"case {self.id}: cannot read {name} ({exc.strerror or exc})"
            if got != want:
                return f"case {self.id}: corrupt {name} (its contents differ from the sha256 in case.json)"
        return ""

    @property
    def reduced_from(self) -> str | None:
        return (self.triage or {}).get("reduced_from")

    def program_graph(self) -> Graph:
        """The case's graph (from case.json, else its graph.json)."""
        data = self.graph
        if data is None and self.path is not None and (self.path / "graph.json").exists():
            data = _read_json(self.path / "graph.json", "does not exist")
        if not isinstance(data, dict):
            raise AssayError(f"case {self.id}: case.json has no graph; the case cannot be replayed")
        try:
            return Graph.from_json(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise AssayError(f"case {self.id}: corrupt graph in case.json ({exc})") from None

    def tensors(self, graph: Graph | None = None) -> dict:
        """Inputs and params by graph name, submodule weights by state-dict key (never pickle); not the
        second call's inputs of a dynamic-mode case (``SECOND_CALL_PREFIX``)."""
        from fuzz.gen.program import tensor_identifiers

        graph = graph or self.program_graph()
        files = self.tensor_files()
        if "inputs.safetensors" not in files and graph.inputs:
            raise AssayError(f"case {self.id}: inputs.safetensors is missing; the case cannot be replayed")
        back = {v: k for k, v in tensor_identifiers(graph).items()}
        out = {back.get(key, key): value for saved in files.values() for key, value in saved.items()
               if not key.startswith(SECOND_CALL_PREFIX)}
        missing = [n for n in graph.inputs if n not in out]
        if missing:
            raise AssayError(f"case {self.id}: inputs.safetensors lacks {', '.join(missing[:4])}")
        return out

    def tensor_files(self) -> dict:
        """{file name: {key: tensor}} of the case's .safetensors files, as saved (never pickle)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        out = {}
        for name in TENSOR_FILES:
            if self.path is None or not (self.path / name).exists():
                continue
            try:
                out[name] = load_file(str(self.path / name))
            except (SafetensorError, OSError, ValueError) as exc:
                raise AssayError(f"case {self.id}: corrupt {name} ({exc})") from None
        return out


def _read_json(file: Path, missing: str):
    """The JSON in ``file``; missing (``missing`` says what that means) or corrupt: a one-line AssayError."""
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        raise AssayError(f"{file}: {missing}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AssayError(f"{file}: corrupt {file.name} ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


def read_case(path) -> Case:
    """The case in a case directory (or at a case.json); missing or corrupt: a one-line AssayError."""
    path = Path(path)
    file = path / CASE_FILE if path.is_dir() else path
    return Case.from_json(_read_json(file, "no case.json (not a saved case, or it was deleted)"), file.parent)
