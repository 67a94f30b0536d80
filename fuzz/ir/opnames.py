"""Operator names, one module for every stage.

An operator is named by how it is called (``api``): ``aten`` (``aten::convolution`` plus an
overload), ``function`` (``torch.nn.functional.conv2d``, ``torch.Tensor.add``) or ``module``
(``torch.nn.Conv2d``). The stages need four views of such a name:

- ``base_name``: one name per operator *across* call levels, for counting operators honestly
  (``torch.nn.functional.conv2d``, ``torch.conv2d`` and ``aten::conv2d`` are all ``conv2d``;
  ``torch.linalg.svd`` and ``aten::linalg_svd`` are ``linalg_svd``; ``torch.nn.ReLU`` is
  ``relu``; a trailing in-place ``_`` is dropped).
- ``short_name``: the last component, lower case, without leading/trailing underscores
  (``Tensor.__rsub__`` -> ``rsub``, ``torch.linalg.svd`` -> ``svd``): what the generator draws
  operators by and what a program names its calls after.
- ``identifier_stem``: ``short_name`` made into a Python identifier stem, for tensor names.
- ``display_name``: the name with its aten overload (``aten::add.Tensor``), as cases list it.
"""

from __future__ import annotations

import re

COND_OP = "torch.cond"  # a cond node's op (fuzz.gen.forms); the generator's runs and program.py compute it in eager

# Namespaces a function-level name may carry before the operator's own name.
FUNCTION_NAMESPACES = ("nn.functional.", "Tensor.", "_tensor.Tensor.", "_C._nn.", "_C._linalg.", "_C._special.",
                       "_C._fft.")


def base_name(api: str, op: str) -> str:
    """One name per operator across call levels (see the module docstring)."""
    if api == "aten":
        name = op.split("::", 1)[-1]
    elif api == "module":
        name = op.rsplit(".", 1)[-1].lower()
    else:
        name = op[len("torch."):] if op.startswith("torch.") else op
        for ns in FUNCTION_NAMESPACES:
            if name.startswith(ns):
                name = name[len(ns):]
        name = name.replace(".", "_")
    return re.sub(r"(?<=[a-z0-9])_$", "", name)


def last_component(op: str) -> str:
    """``aten::convolution`` -> ``convolution``; ``torch.nn.functional.conv2d`` -> ``conv2d``."""
    return op.split("::")[-1].split(".")[-1]


def short_name(op: str) -> str:
    """The last component, lower case, underscores stripped; empty for a name of underscores only."""
    return last_component(op).lower().strip("_")


def identifier_stem(op: str, default: str = "t") -> str:
    """``short_name`` with every non-identifier run folded to ``_`` (``default`` if nothing is left)."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", last_component(op).lower()).strip("_") or default


def display_name(op: str, api: str | None = None, overload: str | None = None) -> str:
    """``aten::add.Tensor`` for a non-default aten overload, else the op as called."""
    if api == "aten" and overload and overload != "default":
        return f"{op}.{overload}"
    return op


def query_base_name(query: str) -> str:
    """``base_name`` of an operator name as a user types it, whichever level it names:
    ``aten::relu``, ``torch.relu``, ``relu``, ``nn.functional.relu`` and ``nn.ReLU`` are all ``relu``."""
    query = query.strip()
    if "::" in query:
        return base_name("aten", query.split(".")[0] if query.count(".") else query)
    if last_component(query)[:1].isupper():
        return base_name("module", query)
    return base_name("function", query)


def name_matches(query: str, api: str, op: str, overload: str | None = None, exact_only: bool = False) -> bool:
    """Does ``query`` name this operator? Exactly (``op``, ``display_name``, or ``op`` without
    its ``torch.`` prefix), or, unless
    ``exact_only``, by base name (any call level of the same operator)."""
    if query in (op, display_name(op, api, overload)) or f"torch.{query}" == op:
        return True
    return not exact_only and query_base_name(query) == base_name(api, op)
