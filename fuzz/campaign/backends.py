"""Compiled backends under test, by name.

Eager is the reference; every backend here is a *compile function* written as a
small source snippet ``def compile_model(model, inputs, dynamic=False)`` that
returns a callable taking the same positional inputs as ``model``. The snippet is
the single definition: the worker executes it, and ``fuzz.campaign.repro`` pastes it into
each ``repro.py``, so a repro compiles exactly as the campaign did.

Adding a backend is one ``register(Backend(...))`` call with its snippet.

Names: ``inductor``, ``aot_eager``, ``aot_eager_decomp_partition``, ``eager``
(dynamo only), ``export`` (``torch.export.export``, then the exported program's
module), ``export_core`` (the exported program lowered to core ATen by
``run_decompositions()`` first), ``export_saved`` (the exported program through
``torch.export.save`` and ``load``), ``aoti`` (AOTInductor: compile and package, then load the package).

Test-only backends (fault injection, prefixed ``_``) exist only when the
environment variable ``ASSAY_TEST_BACKENDS=1`` is set: ``_segfault``, ``_abort``,
``_hang``, ``_oom`` (allocates 10 GB), ``_raise``, ``_perturb`` (a wrong result),
``_perturb_resized`` (wrong only when called at sizes other than the compiled ones),
``_perturb_inference`` (wrong only when called under torch.inference_mode() with inference tensors),
``_perturb_cached`` (inductor, wrong only when its compile was served from the FX graph cache),
``_lose_state`` / ``_double_state`` (right outputs, but the buffers and inputs forward writes are
left unwritten / written twice),
``_gate`` (a compile that blocks until the directory ``$ASSAY_GATE`` holds a file ``open``
or a ``ticket-*`` it can take: tests stop a campaign at a known point).
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass

from fuzz.errors import AssayError

MODES = ("fwd", "bwd", "dynamic", "train")
# A default campaign mixes them all (``fuzz.campaign.config.Config.modes``); an exported program
# holds its own copies of the parameters, so export and aoti cannot be trained through.
EXPORT_MODES = ("fwd", "bwd", "dynamic")


@dataclass
class Backend:
    name: str
    source: str                 # defines compile_model(model, inputs, dynamic=False)
    modes: tuple = MODES        # modes it supports
    description: str = ""
    test_only: bool = False
    state_readable: bool = True  # the compiled callable writes the buffers of the module it was given
    # its outputs have eager's strides by contract (inductor's keep_output_stride, on by default; the
    # aot_eager family runs aten kernels): the oracle then judges the strides of forward outputs too
    eager_strides: bool = False
    # it specialises every Python number forward takes on its first call's value (torch.export treats
    # them as constants): a second call that changes one is refused by design, not judged
    specialises_numbers: bool = False
    # it compiles through torch.compile, whose on-disk caches can serve a compile: under the
    # ``warm_cache`` knob its compile is (``fuzz.campaign.knobs.served_from_caches``)
    cached: bool = False
    # it compiles through torch.export: an error that names an unsupported construct is a
    # limitation, and a call at sizes the export specialised is refused by design (``Session``)
    exported: bool = False

    def compile_function(self):
        """The ``compile_model`` function defined by the snippet (served from torch's caches under
        the ``warm_cache`` knob when the backend compiles through torch.compile)."""
        from fuzz.campaign.knobs import served_from_caches

        ns: dict = {}
        exec(compile("import torch\n" + self.source, f"<backend {self.name}>", "exec"), ns)
        return served_from_caches(ns["compile_model"]) if self.cached else ns["compile_model"]


REGISTRY: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    backend.source = textwrap.dedent(backend.source).strip() + "\n"
    REGISTRY[backend.name] = backend
    return backend


def _dynamo(name: str, setup: str = "") -> str:
    return f'''
    def compile_model(model, inputs, dynamic=False):
        torch._dynamo.reset()  # a fresh cache per model: no recompile limits, no stale guards{setup}
        return torch.compile(model, backend="{name}", dynamic=None if dynamic is None else bool(dynamic))
    '''


# Inductor emits an OpenMP parallel region only when it compiles for more than one thread
# (``parallel_num_threads() > 1``), and a campaign's workers run torch with one thread each (two
# workers on two cores), so the inductor backend compiles for at least two: the parallel split of
# the outer loops is compiled and run (``fuzz.campaign.outputcode`` records whether it was).
_INDUCTOR_THREADS = """
        torch._inductor.config.cpp.threads = max(2, torch.get_num_threads())"""

register(Backend("inductor", _dynamo("inductor", _INDUCTOR_THREADS), eager_strides=True, cached=True,
                 description="torch.compile, TorchInductor (C++/Triton codegen)"))
register(Backend("aot_eager", _dynamo("aot_eager"), eager_strides=True, cached=True,
                 description="torch.compile, AOTAutograd traced graph run eagerly"))
register(Backend("aot_eager_decomp_partition", _dynamo("aot_eager_decomp_partition"), eager_strides=True, cached=True,
                 description="aot_eager with inductor's decompositions and min-cut partitioning"))
register(Backend("eager", _dynamo("eager"), eager_strides=True, cached=True, description="torch.compile, dynamo graph capture only"))

_EXPORT_SHAPES = '''
    def _dynamic_shapes(inputs):  # a Python number forward takes has no shape: None
        return tuple({d: torch.export.Dim.AUTO for d in range(t.dim())} if isinstance(t, torch.Tensor) else None
                     for t in inputs)
'''

register(Backend("export", _EXPORT_SHAPES + '''
    def compile_model(model, inputs, dynamic=False):
        shapes = _dynamic_shapes(inputs) if dynamic is not False else None  # None: no recompile to make
        program = torch.export.export(model, tuple(inputs), dynamic_shapes=shapes)
        return program.module()
''', modes=EXPORT_MODES, specialises_numbers=True, exported=True,
                 description="torch.export.export, then the exported program's module"))

# run_decompositions() gives the inference IR: core ATen decompositions written for graphs that run
# below autograd (``detach`` becomes ``aten.alias``, circular padding a ``slice_scatter`` without
# complex autograd), so its program is judged forward only; differentiating through it was the
# s26b campaign's two false alarms
register(Backend("export_core", _EXPORT_SHAPES + '''
    def compile_model(model, inputs, dynamic=False):
        shapes = _dynamic_shapes(inputs) if dynamic is not False else None
        program = torch.export.export(model, tuple(inputs), dynamic_shapes=shapes)
        return program.run_decompositions().module()  # lowered to the core ATen opset first
''', modes=("fwd", "dynamic"), specialises_numbers=True, exported=True,
                 description="torch.export.export, run_decompositions() to core ATen, then the program's module"))

register(Backend("export_saved", _EXPORT_SHAPES + '''
    def compile_model(model, inputs, dynamic=False):
        import io
        shapes = _dynamic_shapes(inputs) if dynamic is not False else None
        program = torch.export.export(model, tuple(inputs), dynamic_shapes=shapes)
        saved = io.BytesIO()
        torch.export.save(program, saved)  # serialised and read back, as a program shipped to another process
        saved.seek(0)
        return torch.export.load(saved).module()
''', modes=EXPORT_MODES, specialises_numbers=True, exported=True,
                 description="torch.export.export, torch.export.save and load, then the loaded program's module"))

register(Backend("aoti", _EXPORT_SHAPES + '''
    def compile_model(model, inputs, dynamic=False):
        import os, shutil, tempfile
        # AOTInductor checks a call's sizes and strides against what it was exported for only with
        # this set (read at a model's first call); unchecked, a size export specialised runs anyway
        os.environ["AOTI_RUNTIME_CHECK_INPUTS"] = "1"
        shapes = _dynamic_shapes(inputs) if dynamic is not False else None
        program = torch.export.export(model, tuple(inputs), dynamic_shapes=shapes)
        folder = tempfile.mkdtemp(prefix="assay-aoti-")
        try:
            path = torch._inductor.aoti_compile_and_package(program, package_path=os.path.join(folder, "model.pt2"))
            loaded = torch._inductor.aoti_load_package(path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        # ... and even then only each size against its range: export's guards relating sizes (x.size(2) // 2
        # == 1 where a pooled dim came out 1) are not checked, so run the exported program's own guards first
        guards = getattr(program.module(), "_guards_fn", None)

        def run(*args):
            if guards is not None:
                guards(*args)  # AssertionError "Guard failed: ..." at sizes the program does not cover
            return loaded(*args)
        return run
''', modes=("fwd", "dynamic"), state_readable=False, specialises_numbers=True, exported=True,
                 description="AOTInductor: aoti_compile_and_package + aoti_load_package"))


# -- test-only fault injection ----------------------------------------------

_TEST_BACKENDS = [
    Backend("_segfault", '''
    def compile_model(model, inputs, dynamic=False):
        import ctypes
        ctypes.string_at(0)  # read address 0: SIGSEGV
    ''', test_only=True),
    Backend("_abort", '''
    def compile_model(model, inputs, dynamic=False):
        import os
        os.abort()
    ''', test_only=True),
    Backend("_hang", '''
    def compile_model(model, inputs, dynamic=False):
        import time
        while True:
            time.sleep(1)
    ''', test_only=True),
    Backend("_oom", '''
    def compile_model(model, inputs, dynamic=False):
        hog = torch.ones(10 * 2**30, dtype=torch.uint8)  # 10 GB
        return lambda *args: model(*args) if hog.numel() else None
    ''', test_only=True),
    Backend("_leak", '''
    def compile_model(model, inputs, dynamic=False):
        # raises inside a vmap level it never leaves, as a failed AOTInductor compile of a
        # torch.func.hessian model did (ninth session): later tensors of the process are wrappers
        torch._C._functorch._vmap_increment_nesting(1, "error")
        raise RuntimeError("injected failure inside a vmap level")
    ''', test_only=True),
    Backend("_raise", '''
    def compile_model(model, inputs, dynamic=False):
        def run(*args):
            raise RuntimeError("injected failure in buf3 at 0x7f00deadbeef for shape [2, 3]")
        return run
    ''', test_only=True),
    Backend("_gate", '''
    def compile_model(model, inputs, dynamic=False):
        # Blocks until a test lets it through: the file 'open' in the directory $ASSAY_GATE, or a
        # 'ticket-*' file there that it takes (deletes) for itself. While blocked, the file
        # 'waiting-<pid>' says so. A worker whose driver died (kill -9) exits instead of lingering.
        import glob, os, time
        gate = os.environ["ASSAY_GATE"]
        mark = os.path.join(gate, f"waiting-{os.getpid()}")
        parent = os.getppid()
        open(mark, "w").close()
        try:
            while not os.path.exists(os.path.join(gate, "open")):
                for ticket in sorted(glob.glob(os.path.join(gate, "ticket-*"))):
                    try:
                        os.unlink(ticket)
                        return model
                    except FileNotFoundError:
                        pass  # another worker took it
                if os.getppid() != parent:  # orphaned: its driver was killed
                    os.unlink(mark)
                    os._exit(3)
                time.sleep(0.02)
            return model
        finally:
            os.unlink(mark)
    ''', test_only=True),
    Backend("_perturb_resized", '''
    def compile_model(model, inputs, dynamic=False):
        shapes = [tuple(x.shape) for x in inputs]
        def run(*args):
            out = model(*args)
            if [tuple(x.shape) for x in args] == shapes:
                return out
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            outs[0] = outs[0] + 1.0 + outs[0].abs()  # wrong only at sizes other than the compiled ones
            return tuple(outs)
        return run
    ''', test_only=True),
    Backend("_perturb_inference", '''
    def compile_model(model, inputs, dynamic=False):
        def run(*args):
            out = model(*args)
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if not (torch.is_inference_mode_enabled() and tensors and all(a.is_inference() for a in tensors)):
                return out
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            outs[0] = outs[0] + 1.0 + outs[0].abs()  # wrong only on inference tensors in inference mode
            return tuple(outs)
        return run
    ''', test_only=True),
    Backend("_perturb_cached", '''
    def compile_model(model, inputs, dynamic=False):
        torch._dynamo.reset()
        fn = torch.compile(model, backend="inductor", dynamic=None if dynamic is None else bool(dynamic))
        def run(*args):
            from torch._dynamo.utils import counters
            hits = counters["inductor"]["fxgraph_cache_hit"]
            out = fn(*args)
            if counters["inductor"]["fxgraph_cache_hit"] == hits:
                return out
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            outs[0] = outs[0] + 1.0 + outs[0].abs()  # wrong only when the FX graph cache served the compile
            return tuple(outs)
        return run
    ''', test_only=True, cached=True),
    Backend("_lose_state", '''
    def compile_model(model, inputs, dynamic=False):
        def run(*args):  # right outputs and gradients; the writes into buffers and inputs are lost
            saved = [b.detach().clone() for b in model.buffers()]
            out = model(*[a.clone() for a in args])
            with torch.no_grad():
                for b, s in zip(model.buffers(), saved):
                    b.copy_(s)
            return out
        return run
    ''', test_only=True),
    Backend("_double_state", '''
    def compile_model(model, inputs, dynamic=False):
        def run(*args):  # the outputs of one call; buffers and inputs written twice
            once = [a.clone() for a in args]
            out = model(*once)
            with torch.no_grad():
                for a, o in zip(args, once):
                    a.copy_(o)
                model(*args)
            return out
        return run
    ''', test_only=True),
    Backend("_perturb", '''
    def compile_model(model, inputs, dynamic=False):
        def run(*args):
            out = model(*args)
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            for i, o in enumerate(outs):
                if o.dtype.is_floating_point and o.numel():
                    flat = o.reshape(-1)
                    outs[i] = (flat + torch.nn.functional.one_hot(torch.tensor(0), flat.numel()).to(o.dtype)
                               * (1.0 + flat[0].abs())).reshape(o.shape)  # wrong first element
                    break
            return tuple(outs)
        return run
    ''', test_only=True),
]


def test_backends_enabled() -> bool:
    return os.environ.get("ASSAY_TEST_BACKENDS") == "1"


def available() -> dict[str, Backend]:
    if test_backends_enabled():
        for b in _TEST_BACKENDS:
            if b.name not in REGISTRY:
                register(b)
    return {k: v for k, v in REGISTRY.items() if test_backends_enabled() or not v.test_only}


def get(name: str) -> Backend:
    backends = available()
    if name not in backends:
        public = ", ".join(k for k in backends if not k.startswith("_"))
        raise AssayError(f"unknown backend {name!r}; choose from {public}")
    return backends[name]


def parse_backends(text: str) -> list[str]:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if not names:
        raise AssayError("no backend given; e.g. --backends inductor,aot_eager")
    for n in names:
        get(n)
    return names


def parse_modes(text: str) -> list[str]:
    modes = [m.strip() for m in (text or "").split(",") if m.strip()]
    if not modes:
        raise AssayError("no mode given; e.g. --modes fwd,bwd,dynamic")
    for m in modes:
        if m not in MODES:
            raise AssayError(f"unknown mode {m!r}; choose from {', '.join(MODES)}")
    return modes
