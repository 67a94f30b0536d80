"""Dynamic mode's second call: the same compiled function called again at other input sizes, and
with other values of the numbers ``forward`` takes (``fuzz.gen.scalars``); found once per model by
``find`` while the model is prepared, so eager dying at the new sizes makes the model ``invalid``,
never a backend's failure (docs/campaign.md, "Dynamic mode").
"""

from __future__ import annotations

import copy
import logging

from fuzz.campaign.case import SECOND_CALL_PREFIX
from fuzz.campaign import oracle
from fuzz.campaign.copies import as_list
from fuzz.gen.scalars import other_value


def find(session, max_real: int = 6):
    """Change every input dim of some size ``v`` (parameters keep theirs) to another size.

    Candidates (``v`` by how many input dims have it, then larger first; sizes 0 and 1 last
    or never; ``v+1``, ``v+2``, ``2v``, ``v-1``) are checked on fake (meta) tensors with the
    eager module; the first one whose eager run on real values works is taken.
    """
    import collections

    import torch

    inputs = session.model.inputs
    tensors = [t for t in inputs if isinstance(t, torch.Tensor)]
    counts = collections.Counter(d for t in tensors for d in t.shape)
    order = sorted((v for v in counts if v >= 2), key=lambda v: (-counts[v], -v)) + [1] * (1 in counts)
    meta_ok = shapes_ok(session, [shape_of(t) for t in inputs])  # False: the fake check cannot judge
    # Python numbers forward takes (fuzz.gen.scalars) get other values too: the compiled function
    # must read them, not constants it folded in; with no dims to resize, they alone change
    numbers = {n: other_value(t) for n, t in zip(session.input_names, inputs) if not isinstance(t, torch.Tensor)}
    changed = [(n, v) for n, v in numbers.items() if v != dict(zip(session.input_names, inputs))[n]]
    candidates = [(v, new) for v in order for new in dict.fromkeys(
        n for n in (v + 1, v + 2, 2 * v, v - 1) if n >= 1 and n != v)] + ([(None, None)] if changed else [])
    tried, real = [], 0
    for v, new in candidates:
        shapes = [shape_of(t, v, new) for t in inputs]
        if v is not None and meta_ok and not shapes_ok(session, shapes):
            tried.append(f"{v}->{new}: eager rejects the shapes")
            continue
        if real >= max_real:
            return None, None, {"none": f"eager raised on {real} candidate sizes", "tried": tried[:12]}
        real += 1
        what = f"{v}->{new}" if v is not None else "numbers only"
        # fresh values at the new positions first; if those overflow, copies of the old ones
        for fresh in ((True, False) if v is not None else (True,)):
            resized = laid_out(session, resize_inputs(inputs, v, new, fresh=fresh) if v is not None else list(inputs))
            resized = [numbers.get(n, t) for n, t in zip(session.input_names, resized)]
            try:
                reference = session._references(resized, prefix="call2:")[-1]
            except Exception as exc:
                tried.append(f"{what}: eager raised {type(exc).__name__}")
                break
            if finite(reference.eager) or not finite(session.eager_out):
                info = {"from": v, "to": new, "key_prefix": SECOND_CALL_PREFIX,
                        "shapes": {n: list(t.shape) for n, t in zip(session.input_names, resized)
                                   if isinstance(t, torch.Tensor)}}
                if changed:
                    info["numbers"] = {n: [dict(zip(session.input_names, inputs))[n], x] for n, x in changed}
                return resized, reference, info
            tried.append(f"{what}: non-finite outputs")
    why = "no input dims to resize" if not order else "no other input sizes accepted by eager"
    return None, None, {"none": why, "tried": tried[:12]}

def laid_out(session, inputs: list) -> list:
    """Second-call inputs in the first call's memory layouts (``fuzz.gen.layouts``: a layout does
    not depend on sizes). An exported program is specialised on its inputs' strides, and a
    compiled one handles symbolic strides (padded rows: size + pad) only when they are there."""
    from fuzz.gen.layouts import with_layouts

    laid = with_layouts(dict(zip(session.input_names, inputs)), session.model.graph.meta.get("layouts") or {})
    return [laid[n] for n in session.input_names]

def shapes_ok(session, shapes) -> bool:
    """Whether the eager module runs on fake tensors of these input shapes."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    module = copy.deepcopy(session.module)
    log = logging.getLogger("torch._subclasses.fake_tensor")
    quiet, log.disabled = log.disabled, True  # it logs every failing meta kernel's traceback
    try:
        with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
            args = [torch.empty(s, dtype=t.dtype, device=t.device) if isinstance(t, torch.Tensor) else t
                    for s, t in zip(shapes, session.model.inputs)]
            out = as_list(module(*args))
        return len(out) == len(session.eager_out)
    except Exception:
        return False
    finally:
        log.disabled = quiet

def inputs_file(session) -> bytes | None:
    """``inputs.safetensors`` plus the second call's inputs (``second_call.<name>``), or None."""
    from safetensors.torch import load, save

    inputs, _, _ = session.second_call()
    if inputs is None:
        return None
    import torch

    from fuzz.ir.record import dtype_from_name

    tensors = load(session.model.files["inputs.safetensors"])
    dtypes = {n: session.model.graph.tensors[g].dtype for n, g in zip(session.input_names, session.graph_input_order)
              if g in session.model.graph.tensors}
    for name, t in zip(session.input_names, inputs):
        if not isinstance(t, torch.Tensor):  # a Python number: its 0-dim tensor, as the first call's
            t = torch.tensor(t, dtype=dtype_from_name(dtypes.get(name, "float64")))
        tensors[SECOND_CALL_PREFIX + name] = t.detach().cpu().contiguous()
    return save(tensors)


def finite(values) -> bool:
    import torch

    return all(bool(torch.isfinite(v).all()) for v in values if isinstance(v, torch.Tensor) and oracle.is_float(v))


def shape_of(t, old=None, new=None):
    """An input's shape, every dim of size ``old`` made ``new`` (a Python number: None)."""
    if not hasattr(t, "shape"):
        return None
    return tuple(new if old is not None and d == old else d for d in t.shape)


def resize_inputs(inputs, old: int, new: int, fresh: bool = True, seed: int = 0):
    """``inputs`` with every dim of size ``old`` made ``new``.

    Old positions keep their values (cropped, or tiled along the dim when it grows). With
    ``fresh``, float values at new positions are drawn uniformly between the tensor's finite
    min and max instead of repeating old ones (repeats make ties for argmax, max_pool...).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = []
    for t in inputs:
        if not isinstance(t, torch.Tensor):  # a Python number forward takes: no dims
            out.append(t)
            continue
        dims = [d for d, size in enumerate(t.shape) if size == old]
        r = t
        for d in dims:
            r = r.index_select(d, torch.arange(new, device=t.device) % old)
        if fresh and dims and new > old and t.dtype.is_floating_point and t.numel():
            finite = t[torch.isfinite(t)].to(torch.float64)
            if finite.numel():
                lo, hi = float(finite.min()), float(finite.max())
                mask = torch.zeros(r.shape, dtype=torch.bool)
                for d in dims:
                    grown = (torch.arange(new) >= old).reshape([-1 if i == d else 1 for i in range(r.dim())])
                    mask = mask | grown
                values = lo + (hi - lo) * torch.rand(r.shape, generator=gen, dtype=torch.float64)
                r = torch.where(mask.to(r.device), values.to(r.dtype).to(r.device), r)
        out.append(r.contiguous() if r is not t else t.clone())
    return out
