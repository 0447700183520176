"""The shipped model: loads, is as accurate as its card says, reads generated digits."""
import numpy as np

from digitrec.reading.digits import Recognizer
from tests.conftest import paper_digit


def test_shipped_model_has_a_card(recognizer):
    card = recognizer.card
    assert card["test"]["n"] == 10000
    assert card["test"]["accuracy"] >= 0.99
    assert card["command"].startswith("python -m digitrec train")


def test_shipped_model_reads_mnist_test_digits(recognizer, mnist):
    probs = recognizer.probabilities(mnist.x_test[:2000] / 255.0)
    assert probs.shape == (2000, 10)
    assert (probs.argmax(1) == mnist.y_test[:2000]).mean() >= 0.99


def test_reads_a_digit_drawn_dark_on_paper(recognizer, mnist):
    right = 0
    for i in range(50):
        prediction = recognizer.predict(paper_digit(mnist.x_test[i]))
        right += prediction.digit == mnist.y_test[i]
        assert prediction.input28.shape == (28, 28)
        assert abs(prediction.probabilities.sum() - 1) < 1e-4
    assert right >= 49


def test_blank_page_is_no_digit(recognizer):
    prediction = recognizer.predict(np.full((200, 200), 240, np.uint8))
    assert prediction.digit is None and "no ink" in prediction.reason
    assert prediction.to_dict() == {"digit": None, "reason": prediction.reason}


def test_batch_and_single_agree(recognizer, mnist):
    batch = recognizer.probabilities(mnist.x_test[:8] / 255.0)
    single = np.concatenate([recognizer.probabilities(mnist.x_test[i: i + 1] / 255.0) for i in range(8)])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_missing_model_file_is_reported(tmp_path):
    import pytest
    with pytest.raises(FileNotFoundError, match="not found"):
        Recognizer.load(tmp_path / "none.keras")
