"""Outputs of a mean/variance of values holding an infinity (a sensitivity rule of
``fuzz.campaign.sensitivity``).

The mean of ``[inf, 0.04]`` is ``inf``, but how it is computed decides what comes out: eager's
CPU normalisations and ``var``/``std`` update a running mean (Welford: ``mean += (x - mean) / n``,
and ``0.04 - inf`` then ``inf + -inf`` give NaN), a compiled kernel may sum first (``inf``). The
c185 campaign's float16 ``native_layer_norm`` of such a row returned a NaN mean in eager and
``inf`` under inductor. Neither is promised, so these outputs are not judged when an operand
holds an infinite value; a row of finite values (and NaN, which every order keeps) is judged.
"""

from __future__ import annotations

# By ``short_op`` name: the functions, aten ops and modules that take moments of their input.
MOMENT_OPS = {"native_layer_norm", "layer_norm", "layernorm", "group_norm", "native_group_norm", "groupnorm",
              "batch_norm", "native_batch_norm", "native_batch_norm_legit", "native_batch_norm_legit_no_training",
              "batchnorm1d", "batchnorm2d", "batchnorm3d", "instance_norm", "instancenorm1d", "instancenorm2d",
              "instancenorm3d", "var", "std", "var_mean", "std_mean", "rms_norm", "rmsnorm", "local_response_norm"}


def infinite_moments(node, short: str, eager_env: dict) -> bool:
    """Whether ``node`` (``short_op`` name ``short``) takes moments of an operand holding +-inf."""
    import torch

    if short not in MOMENT_OPS:
        return False
    for name in dict.fromkeys(node.inputs()):
        t = eager_env.get(name)
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() and bool(torch.isinf(t).any()):
            return True
    return False
