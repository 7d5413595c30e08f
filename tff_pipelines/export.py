"""The trained model as a TensorFlow SavedModel that anyone can load without this package."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tff_pipelines.data import Standardizer
from tff_pipelines.models import ModelShape

MODEL_CARD = "model.json"


@dataclass(frozen=True)
class ModelCard:
    """What export needs besides weights: the shapes, and the standardisations the model was
    trained behind (of its inputs, and of a regression target)."""

    shape: ModelShape
    inputs: Standardizer | None = None
    target: Standardizer | None = None


def write_model_card(
    run_dir: Path,
    shape: ModelShape,
    inputs: Standardizer | None,
    target: Standardizer | None = None,
) -> None:
    card = {
        "shape": shape.to_dict(),
        "standardize": _encode(inputs),
        "standardize_target": _encode(target),
    }
    (Path(run_dir) / MODEL_CARD).write_text(json.dumps(card, indent=2) + "\n")


def read_model_card(run_dir: Path) -> ModelCard:
    card = json.loads((Path(run_dir) / MODEL_CARD).read_text())
    return ModelCard(
        shape=ModelShape.from_dict(card["shape"]),
        inputs=_decode(card.get("standardize")),
        target=_decode(card.get("standardize_target")),
    )


def _encode(standardizer: Standardizer | None) -> dict[str, Any] | None:
    if standardizer is None:
        return None
    return {"mean": standardizer.mean.tolist(), "scale": standardizer.scale.tolist()}


def _decode(encoded: dict[str, Any] | None) -> Standardizer | None:
    if not encoded:
        return None
    return Standardizer(
        mean=np.asarray(encoded["mean"], np.float32),
        scale=np.asarray(encoded["scale"], np.float32),
    )


def assign_weights(model: tf.keras.Model, trainable, non_trainable) -> tf.keras.Model:
    for variable, value in zip(model.trainable_weights, trainable, strict=True):
        variable.assign(np.asarray(value))
    for variable, value in zip(model.non_trainable_weights, non_trainable, strict=True):
        variable.assign(np.asarray(value))
    return model


class ServingModel(tf.Module):
    """Raw features in, model output out: applies the training-set standardisation first, and
    maps a regression output trained on standardised targets back to the target's units.

    Calling it (`loaded(x)`) returns the model output (logits, or the regression value with
    shape [batch, 1]); the `serving_default` signature returns named outputs.
    """

    def __init__(
        self,
        model: tf.keras.Model,
        shape: ModelShape,
        inputs: Standardizer | None = None,
        target: Standardizer | None = None,
    ):
        super().__init__(name="tff_pipelines_model")
        self.model = model
        self._regression = shape.task == "regression"
        dim = shape.input_dim
        self.mean = tf.constant(np.zeros(dim) if inputs is None else inputs.mean, tf.float32)
        self.scale = tf.constant(np.ones(dim) if inputs is None else inputs.scale, tf.float32)
        self.target_mean = tf.constant(0.0 if target is None else target.mean, tf.float32)
        self.target_scale = tf.constant(1.0 if target is None else target.scale, tf.float32)
        spec = tf.TensorSpec([None, shape.input_dim], tf.float32, name="x")
        self.__call__ = tf.function(self._call, input_signature=[spec])
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _call(self, x):
        out = self.model((x - self.mean) / self.scale, training=False)
        return out * self.target_scale + self.target_mean

    def _serve(self, x):
        out = self._call(x)
        if self._regression:
            return {"prediction": tf.squeeze(out, axis=-1)}
        return {"logits": out, "probabilities": tf.nn.softmax(out)}


def export_saved_model(
    model: tf.keras.Model,
    shape: ModelShape,
    path: Path,
    inputs: Standardizer | None = None,
    target: Standardizer | None = None,
) -> Path:
    """Writes `path`; `inputs`/`target` are the standardisations the model was trained behind."""
    serving = ServingModel(model, shape, inputs, target)
    path = Path(path)
    tf.saved_model.save(serving, str(path), signatures={"serving_default": serving.serve})
    return path
