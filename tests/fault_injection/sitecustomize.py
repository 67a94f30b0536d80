"""TEST-ONLY fault injection for the triage tests. Never on the product's path.

Python imports ``sitecustomize`` at start-up from the first directory on ``sys.path``
that has one. The triage tests put this directory on ``PYTHONPATH`` of the child
processes they start (sandbox workers, repro scripts) and set ``ASSAY_TEST_FAULT``:

- ``relu``: the compiled path computes ``relu(x) + 0.5`` instead of ``relu(x)``;
- ``add``:  the compiled path computes ``add(a, b) + 0.5``;
- ``running_stats``: the compiled path writes ``new + 0.5`` into a float buffer it updates in place
  (batch norm's running mean and variance in training mode), and changes nothing else.
- ``relu_raise``: a compile of a graph with ``relu`` raises (a lowering crash on one operator);
- ``contiguous_read``: the compiled path reads every input that is not contiguous as if it were
  (``as_strided`` with row-major strides at the input's offset): a compiler ignoring the strides
  of the inputs it was given (``fuzz.gen.layouts``), harmless for contiguous inputs;
- ``contiguous_outputs``: the compiled path returns every output that is not contiguous as a
  contiguous copy (same values, other strides): a compiler breaking the output-stride contract;
- ``scalar_fold``: aot_eager's compiled forward keeps the numbers of its first call: a Python
  number ``forward`` takes (``fuzz.gen.scalars``; in the aten graph a 0-dim float64 tensor or a
  ``SymInt`` that is no tensor's size) is read once and reused on every later call, as a compiler
  folding a dynamic scalar into a constant without a guard would;
- ``swallow_errors``: aot_eager's compiled forward returns zeros of its outputs' shapes when a
  kernel raises while it runs (a value-dependent check, such as an index bound, that a compiler
  left out): a program eager rejects then returns values (``fuzz.gen.error_calls``);
- ``after_break``: the ``relu`` fault in aot_eager, only in the graphs after the first one compiled
  since ``torch._dynamo.reset()`` (a model's compile starts with it): a fault only a program whose
  graph breaks (``fuzz.gen.forms``) shows, as in the graph dynamo resumes after the break;
- ``relu@no_fusion``: the ``relu`` fault, only while a compile runs with inductor's
  ``max_fusion_size`` at 1 (the ``no_fusion`` knob of ``fuzz.campaign.knobs``): a fault that
  appears only under a compiler setting, as some real ones do.
- ``relu_grad``: relu's gradient (``threshold_backward``) computed ``+ 0.5`` in the graphs
  aot_eager compiles as forward graphs, and its AOTAutograd backward compiler left untouched: only
  compiled autograd's captured backward (the ``compiled_autograd`` knob), which dynamo hands to
  the backend as a forward graph, has the fault.

It rewrites the aten graph that ``aot_eager`` runs (the backend is re-registered
with a forward compiler that edits the graph first) and, for inductor, adds a
post-grad custom pass doing the same. Eager mode is untouched, so the fault shows as
an eager-vs-compiled value mismatch, exactly like a wrong lowering would.
"""

import os

_FAULT, _, _GATE = os.environ.get("ASSAY_TEST_FAULT", "").strip().partition("@")


def _gate_open() -> bool:
    if not _GATE:
        return True
    import torch._inductor.config as inductor_config

    return {"no_fusion": inductor_config.max_fusion_size == 1}[_GATE]


def _install(fault: str) -> None:
    import operator

    import torch
    from torch._dynamo.backends import registry
    from torch._dynamo.backends.common import aot_autograd
    from torch._dynamo.backends.debugging import boxed_nop

    targets = {
        "relu": {torch.ops.aten.relu.default},
        "after_break": {torch.ops.aten.relu.default},
        "relu_grad": {torch.ops.aten.threshold_backward.default},
        "add": {torch.ops.aten.add.Tensor},
        "running_stats": set(),
        "relu_raise": set(),
        "contiguous_read": set(),
        "contiguous_outputs": set(),
        "scalar_fold": set(),
        "swallow_errors": set(),
    }[fault]

    def buffer_write(node) -> bool:
        """A new running mean/variance in aot_eager's functional graph: batch norm's outputs 3 and 4
        (inductor's post-grad graph copies them back into the buffers: ``corrupt`` edits those copies)."""
        if fault != "running_stats" or node.op != "call_function":
            return False
        if node.target is operator.getitem and node.args[1] in (3, 4):
            return node.args[0].target is torch.ops.aten._native_batch_norm_legit_functional.default
        return False

    def corrupt(graph) -> None:
        if not _gate_open() or (fault == "after_break" and forward_graphs[0] < 2):
            return
        if fault == "relu_raise" and any(n.target is torch.ops.aten.relu.default for n in graph.nodes):
            raise RuntimeError("injected compile failure: a graph with relu")
        if fault == "contiguous_read":
            for node in [n for n in graph.nodes if n.op == "placeholder"]:
                val = node.meta.get("val")
                if not isinstance(val, torch.Tensor) or val.is_contiguous():
                    continue
                users = list(node.users)
                rowmajor = torch.empty(val.shape).stride()
                with graph.inserting_after(node):
                    bad = graph.call_function(torch.ops.aten.as_strided.default,
                                              (node, list(val.shape), list(rowmajor), val.storage_offset()))
                for user in users:
                    user.replace_input_with(node, bad)
        if fault == "contiguous_outputs":
            out = next(n for n in graph.nodes if n.op == "output")
            made = []
            for value in out.args[0]:
                val = value.meta.get("val") if isinstance(value, torch.fx.Node) else None
                if isinstance(val, torch.Tensor) and not val.is_contiguous():
                    with graph.inserting_before(out):
                        value = graph.call_function(torch.ops.aten.clone.default, (value,),
                                                    {"memory_format": torch.contiguous_format})
                made.append(value)
            out.args = (type(out.args[0])(made),) + tuple(out.args[1:])
        if fault == "running_stats":
            for node in list(graph.nodes):
                if (node.op == "call_function" and node.target is torch.ops.aten.copy_.default
                        and node.args[0].op == "placeholder" and node.args[1].meta.get("val") is not None
                        and node.args[1].meta["val"].dtype.is_floating_point):
                    with graph.inserting_before(node):
                        bad = graph.call_function(torch.ops.aten.add.Tensor, (node.args[1], 0.5))
                    node.replace_input_with(node.args[1], bad)
        for node in list(graph.nodes):
            if node.op == "call_function" and (node.target in targets or buffer_write(node)):
                users = list(node.users)
                with graph.inserting_after(node):
                    bad = graph.call_function(torch.ops.aten.add.Tensor, (node, 0.5))
                for user in users:
                    user.replace_input_with(node, bad)
        graph.lint()

    forward_graphs = [0]  # aot_eager forward graphs compiled since torch._dynamo.reset()

    def counting_reset(reset=torch._dynamo.reset):
        forward_graphs[0] = 0
        reset()

    torch._dynamo.reset = counting_reset

    def faulty_fw(gm, example_inputs):
        forward_graphs[0] += 1
        if fault != "after_break" or forward_graphs[0] > 1:
            corrupt(gm.graph)
        gm.recompile()
        run = boxed_nop(gm, example_inputs)
        if fault == "swallow_errors":
            return swallow_errors(gm, run)
        return fold_numbers(gm, run) if fault == "scalar_fold" else run

    def swallow_errors(gm, run):
        out = next(n for n in gm.graph.nodes if n.op == "output")
        vals = [a.meta.get("val") if isinstance(a, torch.fx.Node) else None for a in out.args[0]]

        def swallowing(args):
            try:
                return run(args)
            except Exception:
                return [torch.zeros(v.shape, dtype=v.dtype) if isinstance(v, torch.Tensor) else None for v in vals]

        swallowing._boxed_call = True
        return swallowing

    def fold_numbers(gm, run):
        vals = [n.meta.get("val") for n in gm.graph.nodes if n.op == "placeholder"]
        sizes = {str(d) for v in vals if isinstance(v, torch.Tensor) for d in v.shape}
        numbers = [i for i, v in enumerate(vals)
                   if (isinstance(v, torch.SymInt) and str(v) not in sizes)
                   or (isinstance(v, torch.Tensor) and v.dim() == 0 and v.dtype == torch.float64)]
        first = {}

        def folded(args):
            for i in numbers:
                if i in first:
                    args[i] = first[i]
                else:
                    first[i] = args[i].clone() if isinstance(args[i], torch.Tensor) else args[i]
            return run(args)

        folded._boxed_call = True
        return folded

    registry._lazy_import()
    registry._COMPILER_FNS["aot_eager"] = aot_autograd(
        fw_compiler=faulty_fw, bw_compiler=boxed_nop if fault in ("after_break", "relu_grad") else None)

    import torch._inductor.config as inductor_config

    inductor_config.post_grad_custom_post_pass = corrupt
    inductor_config.fx_graph_cache = False


if _FAULT:
    _install(_FAULT)


# ``ASSAY_TEST_SLOW_FSYNC=S``: every os.fsync sleeps S seconds first, so a test that kills a
# campaign at random moments lands inside case writes often (the write window is widened).
_SLOW_FSYNC = os.environ.get("ASSAY_TEST_SLOW_FSYNC", "").strip()
if _SLOW_FSYNC:
    import time as _time

    _real_fsync = os.fsync

    def _slow_fsync(fd, _delay=float(_SLOW_FSYNC)):
        _time.sleep(_delay)
        return _real_fsync(fd)

    os.fsync = _slow_fsync
