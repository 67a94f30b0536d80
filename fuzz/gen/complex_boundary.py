"""The complex64 theme's boundary: complex tensors inside a model, float32 (re, im) pairs outside.

A model of the ``complex64`` dtype theme (``fuzz.gen.policy``) is grown from rules whose dtype
combinations hold complex64 (``fuzz.gen.ruleset.themed``): FFTs, ``view_as_complex``/``view_as_real``,
``polar``, ``angle``, complex matmuls and decompositions, elementwise math on complex numbers. What
it takes and returns stays real, so every part of Assay that handles a model's values (the value
search and edge values, float64 references and perturbed runs, gradients and the training step,
safetensors cases) works on it as on any float32 model:

- each complex graph input ``x`` becomes a float32 input ``x_re_im`` of shape ``x.shape + [2]`` and
  the program's first lines are ``x = torch.view_as_complex(x_re_im)``. In the float64 reference
  the same line makes complex128 from float64;
- each complex graph output ``y`` is returned as ``torch.view_as_real(torch.resolve_conj(y))``
  (``view_as_real`` refuses a tensor whose conjugation is still lazy).

Gradients flow through both views, so ``bwd`` and ``train`` tests differentiate through the complex
part of the model too (Wirtinger calculus: real-valued loss, complex intermediates).
"""

from __future__ import annotations

from fuzz.ir.graph import Graph, Node, TensorInfo

COMPLEX = "complex64"


def has_complex(graph: Graph) -> bool:
    return any(t.dtype.startswith("complex") for t in graph.tensors.values())


def real_boundary(g: Graph) -> bool:
    """Rewrite ``g`` in place so its inputs and outputs are real (above); True when anything changed."""
    leaves = [n for n, t in g.tensors.items() if t.role in ("input", "param") and t.dtype == COMPLEX]
    outs = [o for o in g.outputs if g.tensors[o].dtype == COMPLEX]
    if not leaves and not outs:
        g.meta.setdefault("complex_boundary", {"inputs": [], "outputs": []})
        return False
    entry = []
    for name in leaves:
        info = g.tensors[name]
        pair = _free(g, f"{name}_re_im")
        # the pair takes the complex input's place among the inputs (the order forward takes them)
        g.tensors = {(pair if n == name else n): t for n, t in g.tensors.items()}
        g.tensors[pair] = TensorInfo(list(info.shape) + [2], "float32", info.role)
        g.tensors[name] = TensorInfo(list(info.shape), COMPLEX, "value")
        entry.append(Node(id="", op="torch.view_as_complex", api="function", args=[{"ref": pair}], kwargs={},
                          outputs=[name]))
    tail, new_outs = [], []
    for o in g.outputs:
        if o not in outs:
            new_outs.append(o)
            continue
        shape = list(g.tensors[o].shape)
        resolved = g.add_tensor(shape, COMPLEX, "value", name=_free(g, f"{o}_resolved"))
        pair = g.add_tensor(shape + [2], "float32", "value", name=_free(g, f"{o}_re_im"))
        tail += [Node(id="", op="torch.resolve_conj", api="function", args=[{"ref": o}], kwargs={}, outputs=[resolved]),
                 Node(id="", op="torch.view_as_real", api="function", args=[{"ref": resolved}], kwargs={}, outputs=[pair])]
        new_outs.append(pair)
    g.nodes = entry + g.nodes + tail
    for n in entry + tail:
        n.id = g.new_node_id()
    g.outputs = new_outs
    made = g.meta.setdefault("complex_boundary", {"inputs": [], "outputs": []})
    made["inputs"] += leaves
    made["outputs"] += outs
    return True


def _free(g: Graph, name: str) -> str:
    if name not in g.tensors:
        return name
    k = 1
    while f"{name}_{k}" in g.tensors:
        k += 1
    return f"{name}_{k}"
