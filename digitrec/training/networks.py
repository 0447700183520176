"""CNN builders, one per preset (:mod:`digitrec.training.recipes`). Nothing here knows about data
or training.

Every model takes a batch of 28x28x1 float32 images in [0, 1] (ink bright on dark, as
MNIST) and returns eleven softmax probabilities: the digits 0-9, then "not a digit"
(:data:`digitrec.training.nondigits.NOT_A_DIGIT`), which a model learns where letters and
scribbles are among its training pictures and otherwise leaves near zero.
"""
from __future__ import annotations

import keras
from keras import layers

from digitrec.training.recipes import PRESETS, Preset  # noqa: F401  (the builders' presets, re-exported)

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 11  # ten digits and "not a digit"


@keras.saving.register_keras_serializable("digitrec")
class FusedBatchNorm(layers.Layer):
    """Batch normalization through TensorFlow's fused kernel, for training on a CPU.

    Keras 3's BatchNormalization computes the batch moments and the normalization as
    separate ops (in float32 under mixed precision), and so does its gradient; the fused
    kernel does each in one pass, which makes a CPU training step much shorter. Its
    weights are those of ``BatchNormalization`` (gamma, beta,
    moving mean, moving variance, in that order, same momentum and epsilon), so a model
    trained with it moves into the plain model with ``set_weights``. (One difference: the
    kernel's batch variance is the unbiased one, n/(n-1), with n = batch x height x width.)
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon = momentum, epsilon

    def build(self, input_shape):
        c = (input_shape[-1],)
        self.gamma = self.add_weight(shape=c, initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=c, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=c, initializer="zeros", trainable=False,
                                           name="moving_mean")
        self.moving_variance = self.add_weight(shape=c, initializer="ones", trainable=False,
                                               name="moving_variance")

    def call(self, x, training=False):
        import tensorflow as tf

        # The kernel takes bfloat16 or float32 images, but its parameters in float32.
        f32 = [tf.cast(v, tf.float32) for v in
               (self.gamma, self.beta, self.moving_mean, self.moving_variance)]
        if not training:
            return tf.compat.v1.nn.fused_batch_norm(
                x, f32[0], f32[1], f32[2], f32[3], epsilon=self.epsilon, is_training=False)[0]
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, f32[0], f32[1], epsilon=self.epsilon, is_training=True)
        m = self.momentum
        self.moving_mean.assign(f32[2] * m + mean * (1 - m))
        self.moving_variance.assign(f32[3] * m + variance * (1 - m))
        return y

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


def _conv_bn(x, filters, kernel, strides=1, padding="valid", momentum=0.99, dtype=None,
             fused=False):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                      dtype=dtype)(x)
    norm = FusedBatchNorm if fused else layers.BatchNormalization
    x = norm(momentum=momentum, dtype=dtype)(x)
    return layers.Activation("relu", dtype=dtype)(x)


def build_seed() -> keras.Model:
    """The model the seeds train: the baseline every other figure is compared with."""
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="seed")


def build_fast(dtype=None, fused_bn=False) -> keras.Model:
    """Built for one epoch on a CPU: a strided 5x5 stem max-pooled to 7x7, so both 3x3
    convolutions run on 7x7 maps (pooling later costs half as much time again for the
    same accuracy; benchmarks/results/train_speed.md).

    Batch normalization uses momentum 0.9: with 0.99 the moving statistics lag far behind
    weights that change fast in a one-epoch schedule. ``dtype`` is a Keras dtype policy
    such as ``"mixed_bfloat16"`` for training; the softmax always runs in float32.
    ``fused_bn`` puts FusedBatchNorm in place of BatchNormalization, for training.
    """
    bn = dict(momentum=0.9, dtype=dtype, fused=fused_bn)
    inputs = keras.Input(INPUT_SHAPE)
    x = _conv_bn(inputs, 32, 5, strides=2, padding="same", **bn)
    x = layers.MaxPooling2D(dtype=dtype)(x)
    x = _conv_bn(x, 64, 3, padding="same", **bn)
    x = _conv_bn(x, 128, 3, **bn)
    x = layers.GlobalMaxPooling2D(dtype=dtype)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="fast")


def digit_features(x, dropout: float = 0.4):
    """The ``best`` model's convolutions: two blocks of 3x3, 3x3, strided 5x5, then a 4x4
    conv to 128 features (a 28x28 picture -> 1x1x128; a wider one -> a row of them, as
    the number recognizer uses it), ``dropout`` after each block."""
    for filters in (32, 64):
        x = _conv_bn(x, filters, 3)
        x = _conv_bn(x, filters, 3)
        x = _conv_bn(x, filters, 5, strides=2, padding="same")
        x = layers.Dropout(dropout)(x)
    return _conv_bn(x, 128, 4)


def build_best() -> keras.Model:
    """Two blocks of 3x3, 3x3, strided 5x5 convolutions, then a 4x4 conv to 128 features."""
    inputs = keras.Input(INPUT_SHAPE)
    x = digit_features(inputs)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="best")


BUILDERS = {"seed": build_seed, "fast": build_fast, "best": build_best}


def build_model(preset: str = "best", dtype=None, for_training: bool = False) -> keras.Model:
    """A fresh, uncompiled model for ``preset``.

    ``for_training=True`` gives the model to train with, as the preset says: its
    ``precision`` policy when ``dtype`` allows it (``fast``), its fused batch norm. Its
    weights move one-to-one into ``build_model(preset)``, the float32 model that is
    evaluated and saved."""
    try:
        builder = BUILDERS[preset]
    except KeyError:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}") from None
    kwargs = {}
    if dtype:
        kwargs["dtype"] = dtype
    if for_training and PRESETS[preset].fused_bn:
        kwargs["fused_bn"] = True
    return builder(**kwargs)


def cpu_has_bfloat16() -> bool:
    """True where the CPU computes bfloat16 natively (x86 AVX512_BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def describe(model: keras.Model) -> dict:
    """A JSON-able summary of the architecture for the model card."""
    return {
        "name": model.name,
        "parameters": int(model.count_params()),
        "layers": [
            {"type": type(layer).__name__, **({"output": list(layer.output.shape[1:])}
             if hasattr(layer, "output") else {})}
            for layer in model.layers
        ],
    }
