"""What a training run is asked to do: the presets (a named architecture with the recipe
that suits it), every knob of a run (:class:`TrainConfig`, :class:`RecognizerConfig`,
:class:`DetectorConfig`) and what a run reports while it lasts (:class:`Progress`).

Plain Python, no TensorFlow: the CLI builds its options from these defaults, and the
app's server plans and watches trainings with them, without loading Keras.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

# The data sets digitrec knows by name (their files and sums: digitrec.training.datasets).
DATASET_NAMES = ("mnist", "ardis", "usps", "cvl")
MIN_SHARE = 0.125  # a data set trained beside bigger ones makes at least this share of an epoch


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
    datasets: tuple = ("mnist",)  # digitrec.training.datasets names, trained on together
    small_mix: float = 0.0  # add this many x the training images as small crops (see TrainConfig)
    nondigits: int = 0  # scribbles to render for "not a digit", with the letters (see TrainConfig)
    summary: str = ""  # one short line, for a menu (the description says how it is built)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "seed": Preset(
        "seed",
        "The seeds' tutorial recipe: Conv32-Pool-Conv64-Pool-Dense128-Dropout, Adam, batch 32.",
        epochs=5, batch_size=32, learning_rate=1e-3, schedule="constant", augment=False,
        summary="the tutorial CNN, 5 epochs on MNIST: the baseline",
    ),
    "fast": Preset(
        "fast",
        "Small batch-normalized CNN: a strided 5x5 stem pooled to 7x7, two 3x3 convolutions, "
        "one epoch of batch 256, one-cycle, bfloat16 on CPUs that have it: 99% in seconds.",
        epochs=1, batch_size=256, learning_rate=1.5e-2, schedule="onecycle", augment=False,
        precision="mixed_bfloat16", fused_bn=True,
        summary="a small CNN, one epoch on MNIST: about 99% in seconds",
    ),
    "best": Preset(
        "best",
        "Deeper batch-normalized CNN with strided convolutions, heavy augmentation, one-cycle, "
        "on MNIST, ARDIS, USPS and CVL, with letters and scribbles as \"not a digit\".",
        epochs=18, batch_size=128, learning_rate=3e-3, schedule="onecycle", augment=True,
        label_smoothing=0.05, datasets=("mnist", "ardis", "usps", "cvl"), small_mix=0.2, nondigits=6000,
        summary="the shipped model's recipe: a deeper CNN, augmented epochs on MNIST, ARDIS, USPS and CVL, "
                "and \"not a digit\"",
    ),
}


@dataclass
class TrainConfig:
    """Everything that decides a training run. ``None`` means: the preset's value."""

    preset: str = "best"
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    augment: bool | None = None
    label_smoothing: float | None = None
    seed: int = 1
    # Data sets to train on, by name ("mnist,ardis,usps" or a list); None: the preset's.
    # Each set's training digits only, balanced by digitrec.training.train.epoch_shares.
    datasets: str | list | None = None
    limit: int | None = None  # train on the first N training images of each set only (tests, demos)
    validation: int = 0  # hold out N training images to report validation curves
    eval_every: int = 100  # batches between live validation points (when validation > 0)
    pipeline_mix: float = 0.0  # add this many x the training images, made by the pipeline
    # add this many x the training images as other programs save digits: cut to the ink,
    # maybe stretched to fill the box, 15-32 px, thick or not, binary or a few grey levels,
    # read back through normalize (digitrec.training.datasets.small_crop); None: the preset's
    small_mix: float | None = None
    # "not a digit": render this many scribbles (digitrec.training.nondigits) and add them,
    # with the letters of the training writers of letters/, as an eleventh class; 0: none.
    # None: the preset's
    nondigits: int | None = None
    letter_copies: int = 1  # ...each training writer's letter this many times (augmentation varies each copy)
    init: str | None = None  # start from this model's weights (fine-tuning), not at random
    data: str | None = None
    samples: str | None = None  # a samples database (digitrec.server.samples): your digits join the training
    out: str | None = None  # None: a new file in the models directory's user/ folder
    command: str = ""

    def resolved(self) -> TrainConfig:
        """The config with every ``None`` filled from the preset."""
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        p = PRESETS[self.preset]
        pick = lambda mine, theirs: theirs if mine is None else mine  # noqa: E731
        return replace(
            self,
            epochs=pick(self.epochs, p.epochs),
            batch_size=pick(self.batch_size, p.batch_size),
            learning_rate=pick(self.learning_rate, p.learning_rate),
            augment=pick(self.augment, p.augment),
            label_smoothing=pick(self.label_smoothing, p.label_smoothing),
            datasets=list(p.datasets) if self.datasets is None else dataset_names(self.datasets),
            small_mix=pick(self.small_mix, p.small_mix),
            nondigits=pick(self.nondigits, p.nondigits),
        )


def dataset_names(value: str | list | tuple) -> list[str]:
    """``"mnist, ardis"`` or a list -> ["mnist", "ardis"] (lower case, no blanks or repeats)."""
    items = value.split(",") if isinstance(value, str) else value
    return list(dict.fromkeys(str(n).strip().lower() for n in items if str(n).strip()))


RECOGNIZER_BACKBONES = ("digits", "strip")  # the recognizer's CNNs (training.recognizer.build)


@dataclass
class RecognizerConfig:
    rendered: int = 24000  # numbers rendered from the training digits' hands
    orand_copies: int = 8  # strips cut from each orand-train amount (its box's edges moved each time)
    danish_copies: int = 1  # ...and from each danish-rows number with a box
    backbone: str = "strip"  # "digits": the digit model's convolutions slid along the strip; "strip": from random
    digit_model: str | None = None  # the digit model the "digits" backbone starts from (default: the shipped one)
    convs: int = 2  # "strip": convolutions in each of its two last stages (1: lighter, half the time)
    epochs: int = 4
    batch_size: int = 64
    learning_rate: float = 2e-3  # peak of a warm-up then cosine schedule
    seed: int = 1
    data: str | None = None  # MNIST's folder, the other sets beside it (default: $DIGITREC_DATA)
    out: str | None = None  # default: the shipped models/recognizer.keras
    workers: int | None = None  # processes that cut and render the examples (default: one per CPU)
    init: str | None = None  # start from this recognizer's weights (fine-tune), not at random
    limit: int | None = None  # at most this many numbers of each real set, trained and held out (quick trials)
    command: str | None = None  # the command line, for the card


@dataclass
class DetectorConfig:
    pages: int = 12000  # training pictures: rendered pages, real numbers laid on pages, tight crops, blanks
    epochs: int = 6
    batch_size: int = 32
    learning_rate: float = 2e-3  # peak of a warm-up then cosine schedule
    seed: int = 1
    data: str | None = None  # MNIST's folder, the other sets beside it (default: $DIGITREC_DATA)
    out: str | None = None  # default: the shipped models/detector.keras
    workers: int | None = None  # processes that make the pictures (default: one per CPU)
    init: str | None = None  # start from this detector's weights (fine-tune), not at random
    limit: int | None = None  # at most this many numbers of each real set, trained and held out (quick trials)
    command: str | None = None  # the command line, for the card


@dataclass
class Progress:
    """Shared between a training thread and whoever watches it (CLI, Train page)."""

    total_steps: int = 0
    step: int = 0
    epoch: int = 0
    started: float = field(default_factory=time.time)
    points: list = field(default_factory=list)  # dicts: step, epoch, loss, accuracy[, val_*]
    stop: threading.Event = field(default_factory=threading.Event)
    phase: str = "preparing"  # preparing (the data, the network), training, testing, saving
    done: bool = False
    stopped: bool = False
    error: str | None = None
    result: TrainResult | None = None

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    def position(self, epochs: int) -> tuple[int, int, int]:
        """(epoch, batch within it, batches per epoch), counted from 1, for a run of
        ``epochs`` epochs: "epoch 2 of 3, batch 15 of 227" (a finished epoch shows its
        last batch, not the next epoch's none)."""
        per_epoch = max(1, self.total_steps // max(1, epochs))
        if self.step <= 0:
            return 1, 0, per_epoch
        epoch = min(epochs - 1, (self.step - 1) // per_epoch)
        return epoch + 1, self.step - epoch * per_epoch, per_epoch

    def seconds_left(self) -> float | None:
        if not self.step:
            return None
        elapsed = time.time() - self.started
        return elapsed * (self.total_steps - self.step) / self.step


@dataclass
class TrainResult:
    model: object  # the keras.Model trained
    card: dict
    history: list  # Progress.points
    path: Path | None
