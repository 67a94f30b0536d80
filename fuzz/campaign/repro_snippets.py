"""The code a ``repro.py``'s ``main()`` is assembled from (``fuzz.campaign.repro`` joins them by
mode): how each mode computes the values it judges, the written-state helpers, dynamic mode's
second call, the comparison, and ``main`` itself with its placeholders."""

# The pieces of main(), joined by mode: a fwd repro carries neither gradients nor a second call.
VALUES_FWD = """
def _values(fn, inputs, dtype64=False, compiled=False):
    with forward_context(compiled):  # torch.inference_mode() for the compiled side under its knob
        out = fn(*[fenced(x) for x in inputs])
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    return {f"out{i}": o for i, o in enumerate(out)}
"""

VALUES_BWD = """
def _values(fn, inputs, dtype64=False, module=None):
    \"\"\"name -> value: outputs out0.. and grad:<name> gradients.\"\"\"
    inputs = [_leaf(x) for x in inputs]
    module = fn if module is None else module
    res = outputs_and_grads(fn, module, PARAM_NAMES, inputs, INPUT_NAMES, SKIP, dtype64)
    if res is None:
        return {}
    values, names = res
    return dict(zip([f"out{i}" for i in range(len(values) - len(names))] + names, values))
"""

VALUES_TRAIN = """
def _values(model, inputs, dtype64=False, compiled=False):
    \"\"\"name -> value after one training step (train_step) of a copy of model, eager or compiled.\"\"\"
    import copy

    torch.manual_seed(0)
    module = copy.deepcopy(model).train()
    xs = [fenced(x) for x in inputs]
    fn = compile_model(module, xs, dynamic=False) if compiled else module
    with compiled_backward(BACKEND if compiled else None):  # compiled autograd under its knob
        res = train_step(fn, module, xs, SKIP)
    return {} if res is None else dict(zip(res[1], res[0]))
"""

# A model that writes buffers or inputs in place (the program's WRITES, fuzz.gen.state_forms): every
# call on its own copies, the written state judged after it as buffer:<name> / input:<name>.
VALUES_FWD_STATE = """
def _values(fn, inputs, dtype64=False, module=None, compiled=False):
    with forward_context(compiled):  # torch.inference_mode() for the compiled side under its knob
        xs = [fenced(x) for x in inputs]
        out = fn(*xs)
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    return {**{f"out{i}": o for i, o in enumerate(out)}, **_state(fn, module, xs)}
"""

VALUES_BWD_STATE = """
def _values(fn, inputs, dtype64=False, module=None):
    \"\"\"name -> value: outputs out0.., grad:<name> gradients, then the written state.\"\"\"
    inputs = _leaves(inputs)
    module = fn if module is None else module
    res = outputs_and_grads(fn, module, PARAM_NAMES, inputs, INPUT_NAMES, SKIP, dtype64)
    if res is None:
        return {}
    values, names = res
    return {**dict(zip([f"out{i}" for i in range(len(values) - len(names))] + names, values)),
            **_state(fn, module, inputs)}
"""

STATE = """
def _leaves(inputs):
    \"\"\"Copies of the inputs, the float ones requiring grad, except those forward writes in place.\"\"\"
    written = {name for kind, name in WRITES if kind == "input"}
    return [_leaf(x, n not in written) for n, x in zip(INPUT_NAMES, inputs)]


def _buffers(fn, module):
    holder = fn if isinstance(fn, torch.nn.Module) else module
    return {n.replace("_orig_mod.", ""): b for n, b in holder.named_buffers()} if holder is not None else {}


def _state(fn, module, xs):
    \"\"\"The buffers and inputs forward wrote (WRITES), after the call.\"\"\"
    buffers, by_name = _buffers(fn, module), dict(zip(INPUT_NAMES, xs))
    out = {}
    for kind, name in WRITES:
        t = by_name.get(name) if kind == "input" else buffers.get(name)
        if t is not None:
            out[f"{kind}:{name}"] = t.detach().clone()
    return out


def _restore(fn, module, model):
    \"\"\"The compiled module's buffers back to the saved ones (a second call starts where eager's does).\"\"\"
    start = dict(model.named_buffers())
    with torch.no_grad():
        for name, b in _buffers(fn, module).items():
            if name in start:
                b.copy_(start[name])
"""

SECOND_CALL = """
def _second_call_inputs(first):
    \"\"\"Dynamic mode's second call: the same inputs at other sizes (and other values of the numbers
    forward takes), saved beside the first ones.\"\"\"
    if not SECOND_CALL:
        return None
    tensors = read_safetensors(os.path.join(HERE, "inputs.safetensors"))
    keys = [SECOND_CALL["key_prefix"] + n for n in INPUT_NAMES]
    if any(k not in tensors for k in keys):
        raise ValueError("inputs.safetensors lacks the second call's inputs")
    return [tensors[k].item() if not isinstance(x, torch.Tensor)  # a Python number in the first call too
            else (strided(tensors[k], **LAYOUTS[n]) if n in LAYOUTS else tensors[k]).to(DEVICE)
            for n, k, x in zip(INPUT_NAMES, keys, first)]
"""

JUDGE = """
def _differs(expected, actual, ref):
    \"\"\"(what, line) for the worst difference in CHECK (all values if empty), what as the oracle names it.\"\"\"
    worst = None
    for name in CHECK or [n for n in expected if n not in SKIP]:
        e, a, r = expected.get(name), actual.get(name), (ref or {}).get(name)
        if e is None and a is None:
            continue
        if not isinstance(e, torch.Tensor) or not isinstance(a, torch.Tensor) or a.dtype != e.dtype or a.shape != e.shape:
            what = "type" if type(e) is not type(a) else "dtype" if a.dtype != e.dtype else "shape"
            return what, f"{name}: eager {e!r:.60}, {BACKEND} {a!r:.60}"
        if e.dtype.is_floating_point or e.dtype.is_complex:
            atol, rtol, g = TOLERANCE.get(str(e.dtype)[6:], TOLERANCE["float32"])
            if r is None or r.shape != e.shape:  # no float64 reference: judge against eager, 10x looser
                r, atol, rtol, g = e, atol * 10, rtol * 10, g * 10
            limit = 0.5 * torch.finfo(e.dtype).max if e.dtype.is_floating_point else None
            mask = value_mismatch(r, e, a, atol, rtol, g, K, limit, not name.startswith("grad:")).reshape(-1)
        else:
            r, mask = e, (a.cpu() != e.cpu()).reshape(-1)
        if bool(mask.any()):
            r, e, a = [(torch.view_as_real(t.resolve_conj()) if t.is_complex() else t).detach().cpu().double().reshape(-1) for t in (r, e, a)]
            err = torch.nan_to_num(torch.where(mask, (a - r).abs(), torch.zeros_like(r)), nan=float("inf"))
            i = int(err.argmax())
            line = f"{name}: {int(mask.sum())}/{mask.numel()} off; worst [{i}]: float64 {r[i]}, eager {e[i]}, {BACKEND} {a[i]}"
            if worst is None or float(err[i]) > worst[0]:
                worst = (float(err[i]), "values" if bool(torch.isfinite(a[i])) else "nonfinite", line)
    STRIDES
    return None if worst is None else worst[1:]
"""

# In the repro of a case whose failure is an output's strides (its values agree), in place of STRIDES.
STRIDES = """    if worst is None:  # the saved failure: an output's strides (dims longer than 1; a view's: their order)
        for name in [n for n in CHECK or expected if ":" not in n and n not in SKIP]:
            e, a = expected.get(name), actual.get(name)
            if isinstance(e, torch.Tensor) and isinstance(a, torch.Tensor) and e.numel() and strides_differ(e, a):
                return "stride", f"{name} {tuple(e.shape)}: eager strides {e.stride()}, {BACKEND} {a.stride()}"
"""

# How every repro.py runs main(): its exit code, whatever main() raises.
RUN = """
if __name__ == "__main__":
    try:
        code = main()
    except BaseException as exc:  # anything unforeseen is not a reproduction
        code = print(f"CANNOT RUN: {type(exc).__name__}: {exc}") or 4
    sys.stdout.flush()
    os._exit(code)  # not sys.exit: the hang watchdog must not keep the process alive
"""

# Helpers of main(), each included where main() calls it (``fuzz.campaign.repro._with_helpers``):
# inputs that are Python numbers (fuzz.gen.scalars) pass through them. A program taking no numbers
# gets the plain expressions (``PLAIN``) instead of the first two.
HELPERS = {
    "_on_device": """
def _on_device(x):  # a Python number forward takes stays a number
    return x.to(DEVICE) if isinstance(x, torch.Tensor) else x
""",
    "_double": """
def _double(x):
    return x.double() if isinstance(x, torch.Tensor) and x.dtype.is_floating_point else x
""",
    "_leaf": """
def _leaf(x, grad=True):
    \"\"\"A fenced copy of an input that requires grad if it is a float tensor (and ``grad``).\"\"\"
    x = fenced(x)
    return x.requires_grad_(grad and x.dtype.is_floating_point) if isinstance(x, torch.Tensor) else x
""",
}
PLAIN = {"_on_device(x)": "x.to(DEVICE)", "_double(x)": "x.double() if x.dtype.is_floating_point else x"}

# main() of a program eager rejects (fuzz.gen.error_calls): the backend must reject it too.
RAISES = """
def main():
    import copy, faulthandler, threading

    def hung():
        print(f"DIFFERENT: no result in {TIMEOUT_S} s (a hang)", flush=True)
        os._exit(3)

    threading.Timer(TIMEOUT_S, hung).start()
    faulthandler.dump_traceback_later(TIMEOUT_S + 30, exit=True)
    try:  # missing or corrupt files: nothing to judge
        LIMIT
        torch.manual_seed(0)
        model, inputs = load_model().to(DEVICE), [_on_device(x) for x in load_inputs()]
    except Exception as exc:
        return print(f"CANNOT RUN: the model or tensors do not load ({type(exc).__name__}: {exc})") or 4
    grad = MODE in ("bwd", "train")
    if MODE == "train":
        model.train()

    def grad_mode():  # eager and compiled alike: the grad mode of the compiled side of this MODE
        return torch.enable_grad() if grad else forward_context(True)

    try:
        with grad_mode():
            copy.deepcopy(model)(*[_leaf(x, grad) for x in inputs])
    except Exception as exc:
        eager = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
    else:
        return print("DIFFERENT: eager no longer raises on this call") or 3
    try:
        with grad_mode():
            fn = compile_model(copy.deepcopy(model), [_leaf(x, grad) for x in inputs], dynamic=COMPILE_DYNAMIC if MODE == "dynamic" else False)
            out = fn(*[_leaf(x, grad) for x in inputs])
    except Exception as exc:
        print(f"eager raises {eager}\\n{BACKEND} raises {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}")
        return print(f"AGREE: {BACKEND} rejects the call as eager does") or 0
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    got = ", ".join(f"{str(o.dtype)[6:]}{list(o.shape)}" if isinstance(o, torch.Tensor) else type(o).__name__ for o in out)
    print(f"eager raises {eager}\\n{BACKEND} returns {got}")
    return print(f"REPRODUCED: {BACKEND} returns values where eager raises (raises)") or 1
""" + RUN

MAIN = """
def main():
    import copy, faulthandler, threading, traceback

    def hung():
        print(f"{'REPRODUCED' if EXPECTED == 'hang' else 'DIFFERENT'}: no result in {TIMEOUT_S} s (a hang)", flush=True)
        os._exit(1 if EXPECTED == "hang" else 3)

    threading.Timer(TIMEOUT_S, hung).start()
    faulthandler.dump_traceback_later(TIMEOUT_S + 30, exit=True)  # a hang holding the GIL: exit 1
    try:  # missing or corrupt files: nothing to judge
        LIMIT
        torch.manual_seed(0)
        model, inputs = load_model().to(DEVICE), [_on_device(x) for x in load_inputs()]
        PREP
    except Exception as exc:
        return print(f"CANNOT RUN: the model or tensors do not load ({type(exc).__name__}: {exc})") or 4
    try:
        EAGER
    except Exception:
        traceback.print_exc()
        return print("DIFFERENT: eager itself raised") or 3
    try:
        COMPILED
    except Exception as exc:
        tb = traceback.format_exc()
        typ = f"{type(exc).__module__}.{type(exc).__qualname__}"
        kind = "oom" if any(m in f"{typ} {exc}".lower() for m in OOM_MARKERS) else "crash"
        got = crash_text(BACKEND, typ, str(exc), signed_traceback(exc)) if SIGNATURE else kind
        same = kind == EXPECTED and got == (SIGNATURE or kind)
        print(tb + ("REPRODUCED" if same else "DIFFERENT") + f": {BACKEND} raised ({kind}): {got}")
        return 1 if same else 3
    REFERENCE
    found = _differs(expected, actual, ref)
    if found is None:
        return print(f"AGREE: eager and {BACKEND} agree (not the saved {EXPECTED})") or 0
    same = EXPECTED == "mismatch" and found[0] == DETAIL
    print(found[1] + "\\n" + ("REPRODUCED" if same else "DIFFERENT") + f": {BACKEND} differs from eager ({found[0]})")
    return 1 if same else 3

""" + RUN
