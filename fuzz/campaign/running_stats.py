"""The running statistics a normalisation call updates in place (a sensitivity rule's reach).

``F.instance_norm(x, running_mean=m, running_var=v)`` (``use_input_stats`` defaults to True) and
``F.batch_norm(x, m, v, training=True)`` write ``momentum * stat(x) + (1 - momentum) * m`` into
``m`` and ``v``: a second output that is not in the graph's edges. When the call's own outputs are
not judged (its statistics summed values near overflow, took moments of an infinity...), the
statistics it wrote come from the same sums and must not be judged either, nor what reads them
later. Found in the s25a campaign: ``instance_norm`` of a row holding +-3.4e38 with a computed
tensor as ``running_mean``; eager accumulates the CPU statistics in double (finite, -2.9e36),
inductor in float32 (-inf), and the ``ceil`` of that running mean read afterwards was judged.
"""

from __future__ import annotations

from fuzz.ir.opnames import short_name

# short op name -> (positions of running_mean and running_var, the flag that makes the call
# update them: its position, name and default)
UPDATING_CALLS = {
    "instance_norm": ((1, 2), (5, "use_input_stats", True)),       # torch.nn.functional
    "batch_norm": ((1, 2), (5, "training", False)),                 # torch.nn.functional
}
ATEN_UPDATING_CALLS = {
    "instance_norm": ((3, 4), (5, "use_input_stats", True)),
    "batch_norm": ((3, 4), (5, "training", False)),
    "native_batch_norm": ((3, 4), (5, "training", False)),
    "native_batch_norm_legit": ((3, 4), (5, "training", False)),
}
STAT_NAMES = ("running_mean", "running_var")


def written_running_stats(node) -> list[str]:
    """Names of the graph tensors ``node`` updates in place as running statistics (none when the
    call is not a normalisation that updates them, or passes no tensor for them)."""
    table = ATEN_UPDATING_CALLS if node.api == "aten" else UPDATING_CALLS if node.api == "function" else {}
    spec = table.get(short_name(node.op))
    if spec is None:
        return []
    (mean_at, var_at), (flag_at, flag_name, default) = spec
    args, kwargs = node.args, node.kwargs

    def pick(position, name, fallback=None):
        return kwargs[name] if name in kwargs else (args[position] if len(args) > position else fallback)

    if not pick(flag_at, flag_name, default):
        return []
    out = []
    for position, name in zip((mean_at, var_at), STAT_NAMES):
        ref = pick(position, name)
        if isinstance(ref, dict) and "ref" in ref:
            out.append(ref["ref"])
    return out
