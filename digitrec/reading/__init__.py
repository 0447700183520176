"""Reading: pixels to an answer, with no TensorFlow.

    decode.py     bytes / file / array -> an image array, or a clear ImageError
    normalize.py  one digit's ink -> MNIST's 28x28 (polarity, light, lines, specks)
    engine.py     exported .tflite networks in the LiteRT interpreter
    digits.py     Recognizer: the digit model (and companions) loaded; single digits
    numbers.py    a row of digits -> a Number (over-segmentation, verifier, row reader)
    results.py    Prediction and Number, the answers
"""
