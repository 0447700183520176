"""digitrec: read handwritten digits and whole numbers, drawn, photographed or scanned.

The path from pixels to an answer (:mod:`digitrec.reading`, no TensorFlow):

    load_image -> normalize -> Recognizer (LiteRT) -> Prediction / Number

    >>> from digitrec import Recognizer, load_image
    >>> Recognizer.load().predict(load_image("seven.png")).digit
"""
from digitrec.reading.decode import ImageError, load_image
from digitrec.reading.digits import Recognizer
from digitrec.reading.normalize import NoDigit, normalize
from digitrec.reading.results import Number, Prediction

__all__ = ["ImageError", "NoDigit", "Number", "Prediction", "Recognizer", "load_image", "normalize"]
