"""Central evaluation of the global model on the held-out test set."""

from __future__ import annotations

import numpy as np

from tff_pipelines.data import Standardizer
from tff_pipelines.models import ModelShape


class Evaluator:
    """Loss and metrics of given model weights on the test set, in one traced TF call.

    With `target` (a model trained on standardised regression targets) the model's output is
    mapped back to the target's units first, so the test loss and metrics are in those units.
    """

    def __init__(
        self,
        keras_model,
        shape: ModelShape,
        test: tuple[np.ndarray, np.ndarray],
        target: Standardizer | None = None,
    ):
        import tensorflow as tf

        from tff_pipelines.models import loss_and_metrics

        self.model = keras_model
        loss, metrics = loss_and_metrics(shape)
        self._metrics = [m() for m in metrics]
        x, y = test
        x = tf.constant(x, tf.float32)
        y = tf.constant(y.reshape(-1, 1) if shape.task == "regression" else y)

        shift, scale = (0.0, 1.0) if target is None else (target.mean, target.scale)

        @tf.function
        def evaluate():
            out = self.model(x, training=False) * scale + shift
            values = {"loss": loss(y, out)}
            for metric in self._metrics:
                metric.reset_state()
                metric.update_state(y, out)
                values[metric.name] = metric.result()
            return values

        self._evaluate = evaluate

    def __call__(self, model_weights) -> dict[str, float]:
        model_weights.assign_weights_to(self.model)
        return {k: float(v) for k, v in self._evaluate().items()}
