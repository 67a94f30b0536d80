"""What one verification case comes to: ``CaseResult`` (status, counterexample, statistics).

Every search (``solver``'s ReLU-split search, ``ibab``'s input splitting, ``troot``'s root
stage) returns one; it sits apart so that they can all import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class CaseResult:
    status: str                      # 'sat' | 'unsat' | 'unknown'
    x: np.ndarray | None = None
    stats: dict = field(default_factory=dict)
