"""Figures: training curves, confidence bars, prediction panels, confusion matrix.

Every function returns a matplotlib Figure; callers save or show it.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def plot_history(points: list[dict]) -> Figure:
    """Accuracy and loss against epochs, training and (if recorded) validation."""
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [p["epoch"] for p in points]
    for key, ax in (("accuracy", acc_ax), ("loss", loss_ax)):
        ax.plot(epochs, [p.get(key) for p in points], label="training")
        if any(f"val_{key}" in p for p in points):
            ax.plot(epochs, [p.get(f"val_{key}") for p in points], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_confidences(probabilities, ax=None) -> Figure:
    """Bar chart of every class's confidence (the ten digits, and "not a digit" where the
    model has it: "?"), the winner highlighted."""
    probabilities = np.asarray(probabilities)
    fig = ax.figure if ax is not None else plt.figure(figsize=(4, 3))
    ax = ax or fig.add_subplot()
    classes = range(len(probabilities))
    colors = ["#bbbbbb"] * len(probabilities)
    colors[int(probabilities.argmax())] = "#1f77b4"
    ax.bar(classes, probabilities, color=colors)
    ax.set_xticks(classes, [str(c) if c < 10 else "?" for c in classes])
    ax.set_ylim(0, 1)
    ax.set_xlabel("digit")
    ax.set_ylabel("confidence")
    return fig


def plot_prediction(image: np.ndarray, prediction) -> Figure:
    """The seeds' figure: original, the normalized 28x28 the model saw, the confidences."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    axes[0].imshow(image, cmap="gray" if image.ndim == 2 else None)
    axes[0].set_title("original")
    if prediction.input28 is not None:
        axes[1].imshow(prediction.input28, cmap="gray", vmin=0, vmax=1)
    axes[1].set_title("model input (28x28)")
    for ax in axes[:2]:
        ax.axis("off")
    if prediction.digit is None and prediction.probabilities is not None:  # not a digit
        plot_confidences(prediction.probabilities, axes[2])
        axes[2].set_title(f"{prediction.reason} ({prediction.not_digit:.1%}; ? = not a digit)")
    elif prediction.digit is None:
        axes[2].text(0.5, 0.5, f"no digit\n{prediction.reason}", ha="center", va="center", wrap=True)
        axes[2].axis("off")
    else:
        plot_confidences(prediction.probabilities, axes[2])
        axes[2].set_title(f"prediction: {prediction.digit} ({prediction.confidence:.1%})")
    fig.tight_layout()
    return fig


def plot_confusion(matrix) -> Figure:
    """Confusion matrix with counts; the diagonal dimmed so that errors stand out."""
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6, 5.5))
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    ax.imshow(off, cmap="Reds")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                color="#999999" if i == j else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"errors: {int(off.sum())} of {int(matrix.sum())}")
    fig.tight_layout()
    return fig
