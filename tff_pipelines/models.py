"""Keras models named by a spec: built-in logreg / mlp / cnn, or a user factory."""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass

import tensorflow as tf

from tff_pipelines.errors import ModelFactoryError


@dataclass(frozen=True)
class ModelShape:
    """What the model must accept and produce; known from the data, saved with every run."""

    input_dim: int
    num_classes: int  # 0 for regression
    image_shape: tuple[int, ...] | None = None

    @property
    def task(self) -> str:
        return "regression" if self.num_classes == 0 else "classification"

    @property
    def outputs(self) -> int:
        return 1 if self.num_classes == 0 else self.num_classes

    def to_dict(self) -> dict:
        return {
            "input_dim": self.input_dim,
            "num_classes": self.num_classes,
            "image_shape": list(self.image_shape) if self.image_shape else None,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ModelShape:
        image = d.get("image_shape")
        return cls(int(d["input_dim"]), int(d["num_classes"]), tuple(image) if image else None)


def trainable_dimension(model_spec, shape: ModelShape) -> int:
    """How many numbers a client's model update holds: what the distributed mechanisms rotate,
    round and sum."""
    model = build_model(model_spec, shape)
    return int(sum(math.prod(weight.shape) for weight in model.trainable_weights))


def build_model(model_spec, shape: ModelShape) -> tf.keras.Model:
    """A fresh, uncompiled Keras model taking flat float32 features and returning logits."""
    kind = model_spec.type
    if kind == "factory":
        model = _from_factory(model_spec.factory, shape)
    elif kind == "logreg":
        zeros = model_spec.initializer == "zeros"
        model = tf.keras.Sequential(
            [
                tf.keras.layers.InputLayer(input_shape=(shape.input_dim,)),
                _head(shape, model_spec.bias, zeros),
            ]
        )
    elif kind == "mlp":
        layers = [tf.keras.layers.InputLayer(input_shape=(shape.input_dim,))]
        for width in model_spec.hidden:
            layers.append(tf.keras.layers.Dense(width, activation="relu"))
            if model_spec.dropout:
                layers.append(tf.keras.layers.Dropout(model_spec.dropout))
        model = tf.keras.Sequential([*layers, _head(shape, model_spec.bias)])
    elif kind == "cnn":
        if not shape.image_shape:
            raise ModelFactoryError("model.type cnn needs image data (mnist5k, digits)")
        layers = [
            tf.keras.layers.InputLayer(input_shape=(shape.input_dim,)),
            tf.keras.layers.Reshape(shape.image_shape),
        ]
        side = min(shape.image_shape[:2])
        for filters in model_spec.filters:
            layers.append(
                tf.keras.layers.Conv2D(
                    filters, model_spec.kernel_size, padding="same", activation="relu"
                )
            )
            if side >= 4:  # pool while the image is big enough to halve
                layers.append(tf.keras.layers.MaxPooling2D(2))
                side //= 2
        layers += [
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(model_spec.dense, activation="relu"),
        ]
        if model_spec.dropout:
            layers.append(tf.keras.layers.Dropout(model_spec.dropout))
        model = tf.keras.Sequential([*layers, _head(shape, model_spec.bias)])
    else:
        raise ModelFactoryError(f"unknown model type {kind!r}")
    return model


def _head(shape: ModelShape, bias: bool, zeros: bool = False) -> tf.keras.layers.Layer:
    initializer = "zeros" if zeros else "glorot_uniform"
    return tf.keras.layers.Dense(shape.outputs, use_bias=bias, kernel_initializer=initializer)


def loss_and_metrics(shape: ModelShape):
    """Loss and metric constructors matching the model head (logits or a regression output)."""
    if shape.task == "regression":
        return tf.keras.losses.MeanSquaredError(), [
            tf.keras.metrics.MeanSquaredError,
            tf.keras.metrics.MeanAbsoluteError,
        ]
    return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), [
        lambda: tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    ]


def _from_factory(target: str, shape: ModelShape) -> tf.keras.Model:
    module_name, _, function_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelFactoryError(
            f"model.factory {target!r}: cannot import {module_name!r}: {err}"
        ) from err
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ModelFactoryError(
            f"model.factory {target!r}: {module_name} has no function {function_name!r}"
        )
    offered = {
        "input_dim": shape.input_dim,
        "num_classes": shape.num_classes,
        "image_shape": shape.image_shape,
    }
    params = inspect.signature(function).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    model = function(**{k: v for k, v in offered.items() if takes_all or k in params})
    if not isinstance(model, tf.keras.Model):
        raise ModelFactoryError(
            f"model.factory {target!r} returned {type(model).__name__}, not a Keras model"
        )
    try:
        out = model(tf.zeros([1, shape.input_dim]))
    except Exception as err:
        raise ModelFactoryError(
            f"model.factory {target!r}: model does not accept inputs of shape "
            f"[batch, {shape.input_dim}]: {err}"
        ) from err
    if tuple(out.shape) != (1, shape.outputs):
        raise ModelFactoryError(
            f"model.factory {target!r}: output shape {tuple(out.shape)[1:]} must be "
            f"({shape.outputs},) ({'regression' if shape.num_classes == 0 else 'logits'})"
        )
    return model
