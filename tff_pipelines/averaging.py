"""`ModelAverage`: the model a run publishes, as an average of its global models.

Noisy training wanders around the optimum; averaging the iterates (Polyak & Juditsky 1992) cancels
much of that noise, and an exponential moving average does the same with a shorter memory. The
average is computed from models the server has already released, so it is post-processing and
costs no privacy. Training always continues from the last global model: only evaluation, the
checkpoint's model and the export see the average.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def suffix_start(rounds: int, suffix: float) -> int:
    """The first round of the last round(suffix x rounds) rounds (at least the last round)."""
    if not 0.0 < suffix <= 1.0:
        raise ValueError(f"the averaged suffix is a fraction in (0, 1], not {suffix}")
    return rounds - max(1, round(suffix * rounds)) + 1


class ModelAverage:
    """Running average of the trainable weights of the global models from round `start` on.

    Round k of the average (k = 1, 2, ...) moves it toward the new model by max(1 - decay, 1 / k):
    decay 1 is the uniform mean of every model since `start`; decay < 1 starts as that mean and
    becomes an exponential moving average once 1 / k < 1 - decay (no bias toward the first model).
    The running values keep the weights' dtype, and the checkpoint stores them as they are, so a
    resumed run publishes the same model bit for bit.
    """

    def __init__(self, start: int, decay: float = 1.0) -> None:
        if start < 1:
            raise ValueError(f"averaging starts at a round >= 1, not {start}")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"averaging decay must be in (0, 1], not {decay}")
        self.start, self.decay = start, decay
        self.count = 0
        self._trainable: list[np.ndarray] | None = None

    def takes(self, round_num: int) -> bool:
        """Whether the global model after `round_num` enters the average (fetching it from the
        learning process is not free, so callers ask first)."""
        return round_num >= self.start

    def update(self, round_num: int, trainable: Sequence[np.ndarray]) -> None:
        """Takes the global model after `round_num` into the average (from round `start` on)."""
        if not self.takes(round_num):
            return
        self.count += 1
        rate = max(1.0 - self.decay, 1.0 / self.count)
        if self._trainable is None or self.count == 1:
            self._trainable = [np.array(w) for w in trainable]
            return
        # New arrays, never in place: a checkpoint of the last published model may still be
        # being written on the run loop's I/O thread.
        self._trainable = [
            (average + rate * (np.asarray(new) - average)).astype(average.dtype, copy=False)
            for average, new in zip(self._trainable, trainable, strict=True)
        ]

    def published(self, weights):
        """The model to evaluate and export: `weights` (a tff.learning ModelWeights) with the
        average in place of its trainable part, or `weights` itself before `start`."""
        if self._trainable is None:
            return weights
        return type(weights)(trainable=list(self._trainable), non_trainable=weights.non_trainable)

    def to_dict(self) -> dict[str, Any]:
        """Checkpoint metadata; the averaged weights travel as the checkpoint's model."""
        return {"start": self.start, "decay": self.decay, "count": self.count}

    def restore(self, meta: dict[str, Any], trainable: Sequence[np.ndarray]) -> None:
        """Continues from a checkpoint's metadata and its (averaged) model weights."""
        self.count = int(meta["count"])
        self._trainable = [np.array(w) for w in trainable] if self.count else None
