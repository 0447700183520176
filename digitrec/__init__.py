"""digitrec: read handwritten digits, drawn, photographed or scanned, with a CNN trained on MNIST.

The path from pixels to a prediction:
    imageio.load_image -> preprocess.normalize -> predict.Recognizer -> Prediction
"""
from digitrec.imageio import ImageError, load_image
from digitrec.preprocess import NoDigit, normalize

__all__ = ["ImageError", "NoDigit", "load_image", "normalize", "Recognizer", "read_number"]


def __getattr__(name):  # the model side imports TensorFlow: load it only when asked
    if name in ("Recognizer", "read_number", "Prediction", "Number"):
        from digitrec import predict
        return getattr(predict, name)
    raise AttributeError(name)
