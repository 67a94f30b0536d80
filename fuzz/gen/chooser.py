"""Where every random decision of the generator comes from.

``RandomChooser`` draws from a seeded ``random.Random`` (``assay gen``, campaigns);
``fuzz.strategies.DataChooser`` draws from Hypothesis's data, so one code path serves both.
"""

from __future__ import annotations

import random
from typing import Sequence


class Chooser:
    """Where every random decision of the generator comes from."""

    def integer(self, lo: int, hi: int) -> int:  # inclusive
        raise NotImplementedError

    def choice(self, seq: Sequence):
        return seq[self.integer(0, len(seq) - 1)]

    def chance(self, p: float) -> bool:
        return self.integer(0, 999) < int(p * 1000)

    def snapshot(self):
        """A state ``restore`` returns to, so that the draws after it are made again; None when
        this chooser cannot replay its draws."""
        return None

    def restore(self, state) -> None:
        raise NotImplementedError


class RandomChooser(Chooser):
    def __init__(self, seed: int | random.Random):
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi) if hi > lo else lo

    def snapshot(self):
        return self.rng.getstate()

    def restore(self, state) -> None:
        self.rng.setstate(state)
