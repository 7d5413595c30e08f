import sys
import types
from dataclasses import dataclass, field

import pytest
import tensorflow as tf

from tff_pipelines.models import ModelFactoryError, ModelShape, build_model


@dataclass(frozen=True)
class _Model:
    type: str = "mlp"
    hidden: list = field(default_factory=lambda: [16, 8])
    filters: list = field(default_factory=lambda: [4, 8])
    kernel_size: int = 3
    dense: int = 16
    dropout: float = 0.0
    factory: str | None = None
    initializer: str = "default"
    bias: bool = True


@pytest.mark.parametrize(
    "kind, shape, outputs",
    [
        ("logreg", ModelShape(30, 2), 2),
        ("mlp", ModelShape(784, 10, (28, 28, 1)), 10),
        ("mlp", ModelShape(13, 0), 1),
        ("cnn", ModelShape(784, 10, (28, 28, 1)), 10),
        ("cnn", ModelShape(64, 10, (8, 8, 1)), 10),
    ],
)
def test_builtin_models_take_flat_features_and_return_logits(kind, shape, outputs):
    model = build_model(_Model(type=kind, dropout=0.1), shape)
    assert model(tf.zeros([3, shape.input_dim])).shape == (3, outputs)


def test_zero_initializer_starts_logreg_at_zero():
    model = build_model(_Model(type="logreg", initializer="zeros"), ModelShape(13, 0))
    assert all(not tf.reduce_any(w != 0) for w in model.trainable_weights)
    default = build_model(_Model(type="logreg"), ModelShape(13, 0))
    assert tf.reduce_any(default.trainable_weights[0] != 0)  # Keras's Glorot kernel


@pytest.mark.parametrize("kind", ["logreg", "mlp"])
def test_a_head_without_bias_has_only_its_kernel(kind):
    shape = ModelShape(13, 0)
    with_bias = build_model(_Model(type=kind), shape)
    without = build_model(_Model(type=kind, bias=False), shape)
    assert len(without.trainable_weights) == len(with_bias.trainable_weights) - 1
    assert without.layers[-1].bias is None
    assert without(tf.zeros([2, 13])).numpy().tolist() == [[0.0], [0.0]]  # no intercept


def test_mlp_layers_follow_the_spec():
    model = build_model(_Model(hidden=[32, 16]), ModelShape(20, 3))
    widths = [layer.units for layer in model.layers if isinstance(layer, tf.keras.layers.Dense)]
    assert widths == [32, 16, 3]


def test_cnn_needs_images():
    with pytest.raises(ModelFactoryError, match="image"):
        build_model(_Model(type="cnn"), ModelShape(13, 0))


@pytest.fixture
def user_module(monkeypatch):
    module = types.ModuleType("user_models")

    def good(input_dim, num_classes):
        return tf.keras.Sequential(
            [
                tf.keras.layers.InputLayer(input_shape=(input_dim,)),
                tf.keras.layers.Dense(num_classes),
            ]
        )

    module.good = good
    module.wrong_output = lambda: tf.keras.Sequential(
        [tf.keras.layers.InputLayer(input_shape=(4,)), tf.keras.layers.Dense(7)]
    )
    module.not_a_model = lambda: "model"
    monkeypatch.setitem(sys.modules, "user_models", module)
    return module


def test_user_factory_gets_the_arguments_it_asks_for(user_module):
    model = build_model(_Model(type="factory", factory="user_models:good"), ModelShape(4, 3))
    assert model(tf.zeros([2, 4])).shape == (2, 3)


@pytest.mark.parametrize(
    "target, message",
    [
        ("no_such_module_xyz:f", "cannot import"),
        ("user_models:missing", "no function"),
        ("user_models:not_a_model", "not a Keras model"),
        ("user_models:wrong_output", "output shape"),
    ],
)
def test_user_factory_errors_say_what_is_wrong(user_module, target, message):
    with pytest.raises(ModelFactoryError, match=message):
        build_model(_Model(type="factory", factory=target), ModelShape(4, 3))
