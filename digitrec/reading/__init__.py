"""Reading: pixels to an answer, with no TensorFlow.

    decode.py     bytes / file / array -> an image array, or a clear ImageError
    normalize.py  one digit's ink -> MNIST's 28x28 (polarity, light, lines, specks)
    engine.py     exported .tflite networks in the LiteRT interpreter
    digits.py     Recognizer: the digit model (and companions) loaded; single digits
    ink.py        a picture as ink on paper, as both number networks read it
    detect.py     the detector's map -> a box per number
    recognize.py  a number's box -> its characters (CTC post-processor: ctc_decode; several
                  networks read together: best_reading)
    numbers.py    a picture -> every number in it (detect, then recognize)
    count.py      how many digits a picture holds (one, or a number read whole)
    results.py    Prediction, Number and Reading, the answers
"""
