"""Training: datasets, synthetic pictures, network builders and recipes, the training
loop, and export (``.keras`` + ``.tflite`` + card). The only part of digitrec that imports
TensorFlow; reading (:mod:`digitrec.reading`) never imports this package."""
import os

# TensorFlow's C++ log, set before it loads (every TensorFlow import in digitrec is inside
# this package): 3 keeps its banner and, on a machine without a GPU, CUDA's "failed call to
# cuInit" error out of the training log. The errors that stop a training reach Python as
# exceptions; each card records the GPUs a model trained with (train.machine). Set
# TF_CPP_MIN_LOG_LEVEL=0 to see every line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
