"""verify: prove local robustness of small feed-forward ReLU networks (bounds + branch-and-bound + Z3).

Public API::

    load_network(path)                       # .nnet or .onnx -> Network
    check_robustness(net_or_module, point, eps, decision="argmax", box=None, timeout=60)
    certified_radius(net_or_module, point, decision="argmax", box=None, timeout=60)
    check_vnnlib(net_or_module, vnnlib_path, timeout=60)

The names are resolved lazily so that importing ``verify.command`` (for ``assay --help``)
does not import numpy, onnx or z3.
"""

_API = {
    "load_network": ".load",
    "Network": ".network",
    "check_robustness": ".robustness",
    "certified_radius": ".robustness",
    "check_vnnlib": ".robustness",
    "Result": ".robustness",
    "VnnlibResult": ".robustness",
}

__all__ = list(_API)


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name], __name__), name)
    raise AttributeError(f"module 'verify' has no attribute {name!r}")
