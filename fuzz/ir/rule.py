"""Inferred operator rules: what inference hands to the generator.

One ``Rule`` per signature (see ``fuzz.ir.template``). A rule is *symbolic* when
inference found, for every output dim, a DSL expression over the input dims and
integer arguments that matches every valid record, and a set of constraints that
holds on every valid record; otherwise it is *concrete*: the generator can only
replay its recorded valid calls (``examples``).

Rules for a torch version are stored as one gzip JSON-lines file,
``corpus/torch-<version>/rules.jsonl.gz``, one rule per line, plus
``rules-stats.json`` with the inference summary that ``assay rules stats`` prints.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from fuzz.errors import AssayError

CORPUS_ROOT = Path(__file__).resolve().parent.parent.parent / "corpus"


@dataclass
class Rule:
    key: str                      # signature key (fuzz.ir.template.signature_key)
    op: str                       # "aten::convolution", "torch.nn.functional.conv2d", "torch.nn.Conv2d"
    api: str                      # how it is called: "aten" | "function" | "module"
    overload: str | None
    template: dict                # call template with {"X": i} / {"A": k} / {"F": m} placeholders
    ranks: list[int]              # rank of each tensor input X0, X1, ...
    n_ints: int                   # number of integer placeholders A0..A{n-1}
    status: str                   # "symbolic" | "concrete"
    # dtype combinations seen valid: [[input dtypes...], [output dtypes...]]
    dtypes: list[list[list[str]]] = field(default_factory=list)
    constraints: list = field(default_factory=list)       # DSL predicates over x{i}_{j}, a{k}
    outputs: list | None = None   # per tensor output: list of DSL expressions (its shape); None if concrete
    examples: list[dict] = field(default_factory=list)   # valid calls: {"shapes", "dtypes", "ints", "floats", "out"}
    # float values seen valid, one list per call, for the template's {"F": m} placeholders
    floats: list[list] = field(default_factory=list)
    stats: dict = field(default_factory=dict)            # valid/invalid/held-out counts

    def symbols(self) -> list[str]:
        dims = [f"x{i}_{j}" for i, r in enumerate(self.ranks) for j in range(r)]
        return dims + [f"a{k}" for k in range(self.n_ints)]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Rule":
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def rules_path(version: str | None = None, root: Path | None = None) -> Path:
    if version is None:
        import torch

        version = torch.__version__.split("+")[0]
    return (root or CORPUS_ROOT) / f"torch-{version}" / "rules.jsonl.gz"


def write_rules(path: str | os.PathLike, rules: Iterable[Rule]) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        with io.TextIOWrapper(gz, encoding="utf-8") as fh:
            for rule in rules:
                fh.write(json.dumps(rule.to_json(), sort_keys=True, separators=(",", ":")) + "\n")
                n += 1
    os.replace(tmp, path)
    return n


def read_rules(path: str | os.PathLike) -> Iterator[Rule]:
    path = Path(path)
    if not path.exists():
        raise AssayError(f"no rules at {path}; run 'assay rules infer' to build them")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield Rule.from_json(json.loads(line))
                    except ValueError as exc:
                        raise AssayError(f"{path}:{lineno}: corrupt rule ({exc}); rebuild with 'assay rules infer'") from None
    except (OSError, EOFError) as exc:
        raise AssayError(f"{path}: cannot read rules ({exc}); rebuild with 'assay rules infer'") from None


_CACHE: dict[str, list[Rule]] = {}


def load_rules(version: str | None = None, path: str | os.PathLike | None = None) -> list[Rule]:
    """The shipped (or given) rules, read once per process."""
    p = Path(path) if path is not None else rules_path(version)
    key = str(p)
    if key not in _CACHE:
        _CACHE[key] = list(read_rules(p))
    return _CACHE[key]
