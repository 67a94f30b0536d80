"""Failure signatures: which saved cases are the same bug.

A signature is a short stable id plus the readable text it hashes:

- ``crash``: backend, normalised exception type and first message line (numbers,
  addresses, tensor/buffer names, shapes and quoted strings masked), and the three
  innermost traceback frames inside torch (``module:function``, no line numbers). Where the
  first line is a wrapper's that names no cause (dynamo's "RuntimeError when making fake tensor
  call"), the inner exception it quotes (``got Type('first line...``) is added, masked alike:
  behind one wrapper and one set of dynamo frames lie different bugs;
- ``mismatch``: backend, mode, what differs (``values`` / ``shape`` / ``dtype`` /
  ``nonfinite``) and the sorted set of operators in the graph;
- ``hang`` / ``signal`` / ``oom``: backend, mode, kind (with the signal name) and the
  sorted operator set.

``signature(...)`` (and ``sign(verdict, ops)``) return a ``FailureSignature``: its ``id``
looks like ``crash-inductor-3f9a1c2b7d10``; ``text`` is what it hashes;
``reduction_class`` is what reducing a case must keep equal. A crash signed before the wrapper's
cause was added keeps its id: the new signature lists the old one in ``aliases``, and
``same_failure`` accepts either.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from fuzz.campaign.verdict import Kind, Verdict

# (pattern, replacement) pairs, applied in order; repro.py embeds them to sign a crash alone
MASK_PATTERNS = [
    (r"0x[0-9a-fA-F]+", "ADDR"),
    (r"torch\.Size\(\[[^\]]*\]\)", "SHAPE"),
    (r"\[\s*-?\d+(?:\s*,\s*-?\d+)*\s*,?\s*\]", "SHAPE"),
    (r"\(\s*-?\d+(?:\s*,\s*-?\d+)+\s*,?\s*\)", "SHAPE"),
    (r"'[^']*'", "'S'"),
    (r'"[^"]*"', '"S"'),
    (r"/[\w./-]+", "PATH"),
    # generated tensor / buffer / argument names: x_0, conv2d_4, buf12, arg3_1, primals_2, s0
    (r"\b[A-Za-z_][A-Za-z0-9]*?_\d+(?:_\d+)*\b", "NAME"),
    (r"\b(?:buf|arg|primals|tangents|tmp|s|u|x|y|ps)\d+\b", "NAME"),
    (r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", "N"),
]
MASKS = [(re.compile(p), r) for p, r in MASK_PATTERNS]


def normalise_message(message: str, limit: int = 240) -> str:
    """The first non-empty line of an exception message with run-specific details masked."""
    line = ""
    for candidate in (message or "").splitlines():
        if candidate.strip():
            line = candidate.strip()
            break
    for pattern, repl in MASKS:
        line = pattern.sub(repl, line)
    line = re.sub(r"\s+", " ", line)
    return line[:limit]


# First lines that name no cause: the message goes on to quote the inner exception as
# `... (*args, **kwargs): got Type("first line\\nmore...")` (a repr, on one line).
WRAPPER_LINES = ("RuntimeError when making fake tensor call",)
INNER_CAUSE = re.compile(r"""\): got (\w+)\((['"])(.*?)(?:\\n|\2\)|$)""", re.M)


def cause_line(message: str) -> str:
    """The inner exception's type and first line that a wrapper's message quotes (masked), or ''
    when the message's first line is not a wrapper's (``WRAPPER_LINES``) or quotes none."""
    first = next((ln.strip() for ln in (message or "").splitlines() if ln.strip()), "")
    found = INNER_CAUSE.search(message or "") if first in WRAPPER_LINES else None
    return normalise_message(f"{found.group(1)}: {found.group(3)}") if found else ""


# A frame line of a formatted traceback: the line ends with the function's name. An inductor
# LoweringException's message quotes its FX node's ``stack_traces`` ("File ..., in forward," with a
# comma), which would otherwise be taken for the innermost frames: they hold torch frames in one
# process and not in another (the twentieth session's flex_attention case signed differently in
# its worker and in a fresh process). The inline flag keeps the pattern whole when repro.py copies it.
FRAME = re.compile(r'(?m)^\s*File "([^"]+)", line \d+, in ([^\s,]+)$')


def torch_frames(traceback_text: str, count: int = 3) -> list[str]:
    """The innermost ``count`` frames of a formatted traceback that lie inside torch."""
    frames = []
    for path, func in FRAME.findall(traceback_text or ""):
        norm = path.replace("\\", "/")
        if "/torch/" not in norm:
            continue
        mod = norm.split("/torch/", 1)[1].rsplit(".", 1)[0].replace("/", ".")
        frames.append(f"torch.{mod}:{func}")
    return frames[-count:]


def short_type(exc_type: str) -> str:
    return (exc_type or "Exception").rsplit(".", 1)[-1]


def crash_text(backend: str, exc_type: str, message: str, traceback_text: str, cause: bool = True) -> str:
    """A crash's signature text: backend, short exception type, normalised message (with a wrapper's
    quoted cause, ``cause_line``; ``cause=False`` gives the format before it), torch frames."""
    frames = " < ".join(reversed(torch_frames(traceback_text)))
    inner = cause_line(message) if cause else ""
    return f"crash|{backend}|{short_type(exc_type)}: {normalise_message(message)}{' <- ' + inner if inner else ''}|{frames}"


@dataclass(frozen=True)
class FailureSignature:
    """A failure's signature: ``id`` (``<kind>-<backend>-<hash>``) and the ``text`` it hashes."""

    id: str
    text: str
    kind: str
    backend: str
    mode: str = "fwd"
    aliases: tuple = ()  # ids the same failure had in an earlier signature format

    def same_failure(self, saved: "FailureSignature") -> bool:
        """Whether this (a replay's signature) is ``saved``'s failure, in today's format or an earlier one."""
        return self.id == saved.id or saved.id in self.aliases

    @property
    def reduction_class(self) -> tuple:
        """What must stay equal while a case is reduced.

        A crash keeps its exact signature (exception type, normalised message, innermost
        torch frames). The other kinds' signatures name the graph's whole operator set,
        which reduction changes by design, so for them the class is the signature text
        without its operator set: kind, backend, mode and what differs (``values`` /
        ``shape`` / ``dtype`` / ``nonfinite``) or the signal name.
        """
        if self.kind == Kind.CRASH:
            return (Kind.CRASH.value, self.id)
        parts = (self.text or "").split("|")
        if parts and parts[0] == self.kind and len(parts) >= 3:
            return tuple(parts[:-1])  # drop the trailing operator set
        return (str(self.kind), self.backend, self.mode)


def signature(kind: str, backend: str, mode: str = "fwd", *, ops=(), error: dict | None = None,
              detail: str = "") -> FailureSignature:
    """The signature of one failure (see the module docstring)."""
    kind = str(kind)
    error = error or {}
    opset = ",".join(sorted(set(ops)))
    aliases = ()
    if kind == Kind.CRASH:
        parts = (backend, error.get("type", ""), error.get("message", ""), error.get("traceback", ""))
        text = crash_text(*parts)
        if cause_line(parts[2]):  # the format before the cause was added: the id old cases carry
            former = crash_text(*parts, cause=False)
            aliases = (f"{kind}-{backend}-{hashlib.sha1(former.encode()).hexdigest()[:12]}",)
    elif kind == Kind.MISMATCH:
        text = f"mismatch|{backend}|{mode}|{detail or 'values'}|{opset}"
    elif kind == Kind.SIGNAL:
        text = f"signal|{backend}|{mode}|{detail}|{opset}"
    else:  # hang, oom, anything else
        text = f"{kind}|{backend}|{mode}|{opset}"
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    return FailureSignature(f"{kind}-{backend}-{digest}", text, kind, backend, mode, aliases)


def sign(verdict: Verdict, ops=()) -> FailureSignature | None:
    """The signature of a failing verdict on a graph with these operators (None: it passed).

    A signal's signature names the signal only (the first word of the executor's detail).
    """
    if not verdict.failed:
        return None
    detail = verdict.detail
    if verdict.kind == Kind.SIGNAL:
        detail = detail.split()[0] if detail else ""
    return signature(verdict.kind, verdict.backend, verdict.mode or "fwd", ops=ops, error=verdict.error,
                     detail=detail)
