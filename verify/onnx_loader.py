"""ONNX -> Network, by reading the graph with the ``onnx`` package (no onnxruntime).

Every tensor that depends on the network input is tracked as an affine function of
the current "base" vector (the flattened network input, or the output of the last
ReLU): ``value = A @ base + c``, stored as ``A`` of shape ``(n_base, *shape)`` and
``c`` of shape ``shape``. Linear ops (MatMul, Gemm, Add/Sub/Mul/Div by constants,
Neg, reshapes) update ``A`` and ``c``; a Relu closes an affine layer. Graphs that
are not a plain chain of affine maps and ReLUs, or that use any other op, are
rejected with an error that names the op.
"""

from __future__ import annotations

import numpy as np

from .network import Network


class OnnxFormatError(ValueError):
    pass


SUPPORTED = ("MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Neg", "Relu", "Flatten", "Reshape",
             "Squeeze", "Unsqueeze", "Identity", "Constant", "Dropout", "Transpose (of constants)")


class _Aff:
    __slots__ = ("A", "c", "base")

    def __init__(self, A, c, base):
        self.A, self.c, self.base = A, c, base

    @property
    def shape(self):
        return self.c.shape


def _attrs(node):
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def read_onnx(path) -> Network:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise OnnxFormatError(f"cannot parse ONNX file ({type(exc).__name__})") from None
    g = model.graph
    consts = {t.name: numpy_helper.to_array(t).astype(np.float64) if numpy_helper.to_array(t).dtype.kind == "f"
              else numpy_helper.to_array(t) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise OnnxFormatError(f"expected one network input, found {len(inputs)}")
    if len(g.output) != 1:
        raise OnnxFormatError(f"expected one network output, found {len(g.output)}")
    dims = [d.dim_value if d.dim_value > 0 else 1 for d in inputs[0].type.tensor_type.shape.dim]
    shape = tuple(dims) if dims else (1,)
    n_in = int(np.prod(shape))
    vals = {inputs[0].name: _Aff(np.eye(n_in).reshape((n_in,) + shape), np.zeros(shape), 0)}
    layers = []  # (W, b) closed by a ReLU
    base_id = 0

    def get(name):
        if name in consts:
            return consts[name]
        if name in vals:
            return vals[name]
        raise OnnxFormatError(f"tensor {name!r} is used before it is defined")

    def is_aff(v):
        return isinstance(v, _Aff)

    for node in g.node:
        op = node.op_type
        ins = [get(n) for n in node.input if n != ""]
        at = _attrs(node)
        out = node.output[0]
        if op == "Constant":
            from onnx import numpy_helper as nh

            if "value" not in at:
                raise OnnxFormatError("Constant node without a tensor 'value' is not supported")
            arr = nh.to_array(at["value"])
            consts[out] = arr.astype(np.float64) if arr.dtype.kind == "f" else arr
            continue
        affs = [v for v in ins if is_aff(v)]
        if not affs:  # pure constant folding for the few ops that appear on weights
            if op == "Transpose":
                perm = at.get("perm")
                consts[out] = np.transpose(ins[0], perm)
            elif op in ("Identity", "Dropout"):
                consts[out] = ins[0]
            elif op in ("Reshape",):
                consts[out] = ins[0].reshape([int(s) for s in ins[1]])
            elif op in ("Add", "Sub", "Mul", "Div"):
                f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
                consts[out] = f(ins[0], ins[1])
            else:
                raise OnnxFormatError(f"unsupported ONNX op {op!r} (on constants); "
                                      f"supported: {', '.join(SUPPORTED)}")
            continue
        if any(v.base != base_id for v in affs):
            raise OnnxFormatError(f"op {op!r} mixes values from before and after a ReLU "
                                  "(only plain feed-forward chains are supported)")
        x = affs[0]
        if op in ("Identity", "Dropout"):
            vals[out] = x
        elif op == "Relu":
            m = int(np.prod(x.shape))
            W = x.A.reshape(x.A.shape[0], m).T
            b = x.c.reshape(m)
            layers.append((W, b))
            base_id += 1
            vals[out] = _Aff(np.eye(m).reshape((m,) + x.shape), np.zeros(x.shape), base_id)
        elif op == "Flatten":
            axis = int(at.get("axis", 1))
            s = x.shape
            axis = axis if axis >= 0 else axis + len(s)
            new = (int(np.prod(s[:axis])), int(np.prod(s[axis:])))
            vals[out] = _Aff(x.A.reshape((x.A.shape[0],) + new), x.c.reshape(new), base_id)
        elif op == "Reshape":
            target = [int(v) for v in ins[1]]
            new = list(target)
            for i, t in enumerate(target):
                if t == 0:
                    new[i] = x.shape[i]
            c = x.c.reshape(new)
            vals[out] = _Aff(x.A.reshape((x.A.shape[0],) + c.shape), c, base_id)
        elif op in ("Squeeze", "Unsqueeze"):
            axes = at.get("axes")
            if axes is None and len(ins) > 1:
                axes = [int(v) for v in ins[1]]
            if op == "Squeeze":
                c = np.squeeze(x.c, axis=tuple(axes)) if axes is not None else np.squeeze(x.c)
            else:
                c = x.c
                for a in sorted(axes):
                    c = np.expand_dims(c, a)
            vals[out] = _Aff(x.A.reshape((x.A.shape[0],) + c.shape), c, base_id)
        elif op in ("Add", "Sub"):
            sign = 1.0 if op == "Add" else -1.0
            if len(affs) == 2:
                a0, a1 = ins
                c = a0.c + sign * a1.c
                A = a0.A + sign * a1.A
                vals[out] = _Aff(np.broadcast_to(A, (A.shape[0],) + c.shape).copy(), c, base_id)
            elif is_aff(ins[0]):
                c = x.c + sign * ins[1]
                vals[out] = _Aff(np.broadcast_to(x.A, (x.A.shape[0],) + c.shape).copy(), c, base_id)
            else:  # const +/- x
                c = ins[0] + sign * x.c
                vals[out] = _Aff(np.broadcast_to(sign * x.A, (x.A.shape[0],) + c.shape).copy(), c, base_id)
        elif op in ("Mul", "Div"):
            if len(affs) == 2:
                raise OnnxFormatError(f"{op} of two input-dependent tensors is not affine")
            k = ins[1] if is_aff(ins[0]) else ins[0]
            if op == "Div":
                if not is_aff(ins[0]):
                    raise OnnxFormatError("Div by an input-dependent tensor is not affine")
                k = 1.0 / k
            c = x.c * k
            vals[out] = _Aff(np.broadcast_to(x.A * k, (x.A.shape[0],) + c.shape).copy(), c, base_id)
        elif op == "Neg":
            vals[out] = _Aff(-x.A, -x.c, base_id)
        elif op == "MatMul":
            if len(affs) == 2:
                raise OnnxFormatError("MatMul of two input-dependent tensors is not affine")
            if is_aff(ins[0]):
                Wm = ins[1]
                vals[out] = _Aff(np.matmul(x.A, Wm), np.matmul(x.c, Wm), base_id)
            else:
                Wm = ins[0]
                if x.c.ndim == 1:
                    vals[out] = _Aff((Wm @ x.A.T).T, Wm @ x.c, base_id)
                else:
                    vals[out] = _Aff(np.matmul(Wm, x.A), np.matmul(Wm, x.c), base_id)
        elif op == "Gemm":
            if not is_aff(ins[0]) or len(affs) != 1:
                raise OnnxFormatError("Gemm is only supported as Gemm(x, W[, b]) with constant W, b")
            alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
            if at.get("transA", 0):
                raise OnnxFormatError("Gemm with transA=1 is not supported")
            Wm = ins[1].T if at.get("transB", 0) else ins[1]
            A = alpha * np.matmul(x.A, Wm)
            c = alpha * np.matmul(x.c, Wm)
            if len(ins) > 2:
                c = c + beta * ins[2]
                A = np.broadcast_to(A, (A.shape[0],) + c.shape).copy()
            vals[out] = _Aff(A, c, base_id)
        else:
            raise OnnxFormatError(f"unsupported ONNX op {op!r} (node {node.name or out!r}); "
                                  f"supported: {', '.join(SUPPORTED)}")
    res = get(g.output[0].name)
    if not is_aff(res):
        raise OnnxFormatError("the network output does not depend on its input")
    if res.base != base_id:
        raise OnnxFormatError("the output is not computed from the last ReLU layer")
    m = int(np.prod(res.shape))
    layers.append((res.A.reshape(res.A.shape[0], m).T, res.c.reshape(m)))
    return Network(layers, name=str(path).rsplit("/", 1)[-1],
                   meta={"format": "onnx", "input_shape": list(shape)})
