"""verify: prove local robustness of small feed-forward ReLU networks (bounds + branch-and-bound + Z3).

Public API::

    load_network(path)                       # .nnet or .onnx -> Network
    check_robustness(net_or_module, point, eps, decision="argmax", box=None, timeout=60)
    certified_radius(net_or_module, point, decision="argmax", box=None, timeout=60)
    check_vnnlib(net_or_module, vnnlib_path, timeout=60)
"""

from .load import load_network
from .network import Network
from .robustness import Result, VnnlibResult, certified_radius, check_robustness, check_vnnlib

__all__ = ["load_network", "Network", "check_robustness", "certified_radius", "check_vnnlib",
           "Result", "VnnlibResult"]
