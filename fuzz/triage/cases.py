"""Reading saved cases for triage, with one-line errors for missing or corrupt ones.

A case is a directory ``DIR/<case-id>/`` written by the crash store (``fuzz.campaign.store``):
``case.json`` (id, kind, backend, mode, signature, outcome, error, graph, ops, versions,
seed, created, reproduces, diff, ...), ``inputs.safetensors`` / ``params.safetensors``
(keys as ``fuzz.gen.program.save_program`` writes them), ``program.py`` and ``repro.py``.

Triage reads ``case.json`` files directly (they are the source of truth; the SQLite index
is only a cache of them) and never loads anything with pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fuzz.errors import AssayError
from fuzz.ir.graph import Graph

DEFAULT_DIR = "crashes"
CASE_FILE = "case.json"


@dataclass
class Case:
    id: str
    path: Path
    data: dict

    def get(self, key, default=None):
        return self.data.get(key, default)

    @property
    def kind(self) -> str:
        return str(self.data.get("kind") or "unknown")

    @property
    def backend(self) -> str:
        return str(self.data.get("backend") or "?")

    @property
    def mode(self) -> str:
        return str(self.data.get("mode") or "")

    @property
    def signature(self) -> str:
        return str(self.data.get("signature") or f"unsigned:{self.id}")

    @property
    def ops(self) -> list[str]:
        ops = self.data.get("ops")
        if isinstance(ops, list):
            return [str(o) for o in ops]
        try:
            return self.graph().ops()
        except AssayError:
            return []

    @property
    def reduced_from(self) -> str | None:
        return (self.data.get("triage") or {}).get("reduced_from")

    def graph(self) -> Graph:
        data = self.data.get("graph")
        if data is None and (self.path / "graph.json").exists():
            data = _read_json(self.path / "graph.json")
        if not isinstance(data, dict):
            raise AssayError(f"case {self.id}: case.json has no graph; the case cannot be replayed")
        try:
            return Graph.from_json(data)
        except ValueError as exc:
            raise AssayError(f"case {self.id}: corrupt graph in case.json ({exc})") from None

    def tensors(self, graph: Graph | None = None) -> dict:
        """Inputs and params by graph name, submodule weights by state-dict key (never pickle)."""
        return read_case_tensors(self.path, graph or self.graph(), self.id)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise AssayError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AssayError(f"{path}: corrupt JSON ({exc}); the case cannot be read") from None
    if not isinstance(data, dict):
        raise AssayError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def check_dir(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise AssayError(f"crashes directory {root} does not exist; pass --dir DIR (where 'assay fuzz --out DIR' saved cases)")
    return root


def case_ids(root) -> list[str]:
    """Ids of every case directory under ``root`` (those holding a case.json), sorted."""
    root = check_dir(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / CASE_FILE).exists())


def load_case(root, case_id: str) -> Case:
    """The case ``case_id`` (or the one case whose id starts with it) under ``root``."""
    root = check_dir(root)
    path = root / case_id
    if not (path / CASE_FILE).exists():
        matches = [c for c in case_ids(root) if c.startswith(case_id)] if case_id else []
        if len(matches) == 1:
            path = root / matches[0]
        elif len(matches) > 1:
            raise AssayError(f"case id {case_id!r} is ambiguous in {root}: {', '.join(matches[:5])}{' ...' if len(matches) > 5 else ''}")
        elif path.is_dir():
            raise AssayError(f"{path} has no case.json; it is not a saved case (corrupt or still being written)")
        else:
            raise AssayError(f"no case {case_id!r} in {root}; 'assay triage list --dir {root}' shows the saved cases")
    data = _read_json(path / CASE_FILE)
    return Case(id=str(data.get("id") or path.name), path=path, data=data)


def iter_cases(root, *, skip_corrupt: bool = True) -> list[Case]:
    """Every readable case under ``root``; corrupt ones are skipped (or raise with ``skip_corrupt=False``)."""
    import sys

    out = []
    for cid in case_ids(root):
        try:
            out.append(load_case(root, cid))
        except AssayError as exc:
            if not skip_corrupt:
                raise
            sys.stderr.write(f"assay: warning: skipping {cid}: {exc}\n")
    return out


def read_case_tensors(path: Path, graph: Graph, case_id: str = "") -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from fuzz.gen.program import tensor_identifiers

    names = tensor_identifiers(graph)
    back = {v: k for k, v in names.items()}
    out: dict = {}
    for fname in ("inputs.safetensors", "params.safetensors"):
        f = Path(path) / fname
        if not f.exists():
            if fname == "inputs.safetensors" and graph.inputs:
                raise AssayError(f"case {case_id or path}: {fname} is missing; the case cannot be replayed")
            continue
        try:
            loaded = load_file(str(f))
        except (SafetensorError, OSError, ValueError) as exc:
            raise AssayError(f"case {case_id or path}: corrupt {fname} ({exc})") from None
        for key, value in loaded.items():
            out[back.get(key, key)] = value
    missing = [n for n in graph.inputs if n not in out]
    if missing:
        raise AssayError(f"case {case_id or path}: inputs.safetensors lacks {', '.join(missing[:4])}")
    return out
