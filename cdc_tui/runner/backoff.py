"""Capped exponential backoff with full jitter, for retrying a source or target that went away."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays of base·2ⁿ seconds capped at `cap`, each drawn uniformly from [delay/2, delay]."""

    base: float = 1.0
    cap: float = 60.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Call after a success: the next failure starts from `base` again."""
        self.attempt = 0
