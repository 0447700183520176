"""The training presets: a named architecture with the recipe that suits it.

Plain Python, no TensorFlow: the CLI builds its options from it without loading Keras.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Preset:
    """A named architecture with the training recipe that suits it."""

    name: str
    description: str
    epochs: int
    batch_size: int
    learning_rate: float  # peak of the schedule
    schedule: str  # "constant" | "onecycle"
    augment: bool
    label_smoothing: float = 0.0
    # "mixed_bfloat16" trains in bfloat16 where the CPU has native bfloat16 instructions
    # (AVX512_BF16 / AMX) and in float32 elsewhere; the saved model is always float32.
    precision: str = "float32"
    # Train with FusedBatchNorm (below) in place of Keras' BatchNormalization; the saved
    # model has the plain layer, with the same weights.
    fused_bn: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "seed": Preset(
        "seed",
        "The seeds' tutorial recipe: Conv32-Pool-Conv64-Pool-Dense128-Dropout, Adam, batch 32.",
        epochs=5, batch_size=32, learning_rate=1e-3, schedule="constant", augment=False,
    ),
    "fast": Preset(
        "fast",
        "Small batch-normalized CNN: a strided 5x5 stem pooled to 7x7, two 3x3 convolutions, "
        "one epoch of batch 256, one-cycle, bfloat16 on CPUs that have it: 99% in seconds.",
        epochs=1, batch_size=256, learning_rate=1.5e-2, schedule="onecycle", augment=False,
        precision="mixed_bfloat16", fused_bn=True,
    ),
    "best": Preset(
        "best",
        "Deeper batch-normalized CNN with strided convolutions, heavy augmentation, one-cycle.",
        epochs=30, batch_size=128, learning_rate=3e-3, schedule="onecycle", augment=True,
        label_smoothing=0.05,
    ),
}
