"""The trained model as a TensorFlow SavedModel that anyone can load without this package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from tff_pipelines.models import ModelShape

MODEL_CARD = "model.json"


def write_model_card(run_dir: Path, shape: ModelShape, standardizer) -> None:
    """model.json: what export needs besides weights (shapes, the standardisation of inputs)."""
    card = {"shape": shape.to_dict(), "standardize": None}
    if standardizer is not None:
        card["standardize"] = {
            "mean": standardizer.mean.tolist(),
            "scale": standardizer.scale.tolist(),
        }
    (Path(run_dir) / MODEL_CARD).write_text(json.dumps(card, indent=2) + "\n")


def read_model_card(run_dir: Path) -> tuple[ModelShape, np.ndarray | None, np.ndarray | None]:
    card = json.loads((Path(run_dir) / MODEL_CARD).read_text())
    standardize = card.get("standardize") or {}
    return (
        ModelShape.from_dict(card["shape"]),
        np.asarray(standardize["mean"], np.float32) if standardize else None,
        np.asarray(standardize["scale"], np.float32) if standardize else None,
    )


def assign_weights(model: tf.keras.Model, trainable, non_trainable) -> tf.keras.Model:
    for variable, value in zip(model.trainable_weights, trainable, strict=True):
        variable.assign(np.asarray(value))
    for variable, value in zip(model.non_trainable_weights, non_trainable, strict=True):
        variable.assign(np.asarray(value))
    return model


class ServingModel(tf.Module):
    """Raw features in, model output out: applies the training-set standardisation first.

    Calling it (`loaded(x)`) returns the raw model output (logits, or the regression value with
    shape [batch, 1]); the `serving_default` signature returns named outputs.
    """

    def __init__(self, model: tf.keras.Model, shape: ModelShape, mean=None, scale=None):
        super().__init__(name="tff_pipelines_model")
        self.model = model
        self._regression = shape.task == "regression"
        self.mean = tf.constant(np.zeros(shape.input_dim) if mean is None else mean, tf.float32)
        self.scale = tf.constant(np.ones(shape.input_dim) if scale is None else scale, tf.float32)
        spec = tf.TensorSpec([None, shape.input_dim], tf.float32, name="x")
        self.__call__ = tf.function(self._call, input_signature=[spec])
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _call(self, x):
        return self.model((x - self.mean) / self.scale, training=False)

    def _serve(self, x):
        out = self._call(x)
        if self._regression:
            return {"prediction": tf.squeeze(out, axis=-1)}
        return {"logits": out, "probabilities": tf.nn.softmax(out)}


def export_saved_model(
    model: tf.keras.Model, shape: ModelShape, path: Path, mean=None, scale=None
) -> Path:
    """Writes `path`; `mean`/`scale` are the standardisation the model was trained behind."""
    serving = ServingModel(model, shape, mean, scale)
    path = Path(path)
    tf.saved_model.save(serving, str(path), signatures={"serving_default": serving.serve})
    return path
