"""The app's server in a real Chromium, seen from the outside: what a fresh `streamlit run`
process has loaded (its /proc/PID/maps) once the first page is open, and after drawings
and uploads have been read."""
import os

import numpy as np
import pytest

from benchmarks.browser import DIGITS
from tests.conftest import encode, readable_digits
from tests.e2e.conftest import new_page
from tests.e2e.helpers import draw, wait_hook

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc: Linux")]

LITERT = "ai_edge_litert/"  # the interpreter's shared libraries
TRAINING = ("site-packages/tensorflow/", "site-packages/keras/", "libtensorflow")


def mapped(pid: int) -> set[str]:
    """The files mapped into a process: its shared libraries among them."""
    with open(f"/proc/{pid}/maps") as f:
        return {line.split(maxsplit=5)[5].strip() for line in f if len(line.split(maxsplit=5)) == 6}


def test_the_model_is_ready_as_the_first_page_opens_and_tensorflow_never_loads(
        browser, fresh_server, mnist, recognizer):
    pid = fresh_server.proc.pid
    page = new_page(browser, fresh_server.url)
    try:
        page.goto("/")
        wait_hook(page, "prediction", lambda t: t.startswith("No digit yet"))
        # The first page is open, no stroke yet: the model is loaded already.
        assert any(LITERT in f for f in mapped(pid))

        draw(page, page.locator("canvas.upper-canvas"), DIGITS[7])
        wait_hook(page, "prediction", lambda t: t.startswith("7"))
        digits = readable_digits(mnist, recognizer, {1, 4})
        row = np.concatenate([digits[d][:, 90:300] for d in (4, 1)], axis=1)
        page.goto("/upload")
        page.get_by_test_id("stRadioGroup").get_by_text("every number in it").click()
        page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
            [{"name": "number.png", "mimeType": "image/png", "buffer": encode(row)}])
        wait_hook(page, "prediction-0", lambda t: t.startswith("41"))
    finally:
        page.context.close()
    loaded = mapped(pid)
    assert not [f for f in loaded if any(t in f for t in TRAINING)]
