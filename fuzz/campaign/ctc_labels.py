"""CTC losses given labels or lengths out of range: where nothing is specified.

``ctc_loss`` reads ``log_probs[t, b, targets[b, s]]`` for every label and its backward writes the
gradient at the same place, checking neither that a label lies in ``[0, C)`` (``C`` the classes,
``log_probs``' last dim) nor that a length fits its tensor. Out of range it reads and writes
outside its tensors in eager and compiled code alike, so a crash, a signal or a value says nothing
about the compiler (``fuzz.campaign.sensitivity.undefined_indexing``). Found in the twenty-first
session: float targets holding -1 (``F.ctc_loss`` accepts them and truncates), whose compiled
backward died of SIGABRT (aot_eager and inductor) while eager's happened to survive.
"""

from __future__ import annotations

# ``short_op`` spellings: torch.nn.functional.ctc_loss, aten::ctc_loss / aten::_ctc_loss, nn.CTCLoss
CTC_OPS = frozenset({"ctc_loss", "ctcloss"})
CTC_OPERANDS = ("log_probs", "targets", "input_lengths", "target_lengths")  # their first four, in order


def labels_out_of_range(log_probs, targets, input_lengths, target_lengths) -> bool:
    """Whether a CTC call's operands (the first four of ``ctc_loss``) have a label outside ``[0, C)``,
    an input length beyond ``log_probs``' time steps, or target lengths beyond its targets (per row
    for padded 2-D targets, in total for concatenated 1-D ones)."""
    import torch

    if not isinstance(log_probs, torch.Tensor) or not isinstance(targets, torch.Tensor) or log_probs.dim() < 2:
        return False
    labels = targets.to(torch.int64)  # float labels are truncated, as the kernel reads them
    if labels.numel() and bool(((labels < 0) | (labels >= log_probs.shape[-1])).any()):
        return True
    lengths_in = torch.as_tensor(input_lengths).to(torch.int64) if input_lengths is not None else None
    if lengths_in is not None and lengths_in.numel() and bool((lengths_in > log_probs.shape[0]).any()):
        return True
    lengths = torch.as_tensor(target_lengths).to(torch.int64) if target_lengths is not None else None
    if lengths is None or not lengths.numel():
        return False
    if bool((lengths < 0).any()):
        return True
    if targets.dim() >= 2:
        return bool((lengths > targets.shape[-1]).any())
    return int(lengths.sum()) > targets.numel()
