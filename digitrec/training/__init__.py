"""Training: datasets, synthetic pictures, network builders and recipes, the training
loop, and export (``.keras`` + ``.tflite`` + card). The only part of digitrec that imports
TensorFlow; reading (:mod:`digitrec.reading`) never imports this package."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ banner, before it loads
