"""Train page in a real Chromium: a short training on a small subset, live curves and
progress counted within the epoch, Stop taken at once, the result beside the active model,
activation for every page, and the models list to go back to another one."""
import math
import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from benchmarks.browser import DIGITS
from digitrec.server import jobs
from digitrec.training.recipes import TrainConfig
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import draw, wait_hook, wait_idle

pytestmark = pytest.mark.e2e

BATCH = re.compile(r"batch (\d+) of (\d+)")


def sidebar_model(page) -> str:
    return page.get_by_test_id("stSidebar").get_by_text("Active model:").inner_text()


def test_train_watch_stop_activate_restore(page, server):
    page.goto("/train")
    images = page.get_by_label("Training images", exact=True)
    images.fill("6000")  # ~310 batches of 16 an epoch: long enough to watch, stopped early anyway
    images.press("Enter")
    wait_idle(page)
    epochs = page.get_by_role("slider", name="Epochs")
    epochs.focus()
    epochs.press("Home")
    epochs.press("ArrowRight")  # 2 epochs: the batch is counted within its epoch
    expect(epochs).to_have_value("2")
    wait_idle(page)
    batch = page.get_by_role("slider", name="Batch size")
    batch.focus()
    batch.press("Home")  # batches of 16: the most steps to watch
    wait_idle(page)

    plan = jobs.plan(TrainConfig(preset="fast", epochs=2, batch_size=16, limit=6000))
    per_epoch = math.ceil((6000 - plan.validation) / 16)
    page.get_by_role("button", name="Start training").click()
    # Live: the batch count goes up while the curves are drawn; then Stop.
    seen = set()
    deadline = time.time() + 300
    while time.time() < deadline and len(seen) < 3:
        if page.locator(".st-key-result").count():
            break  # a fast machine finished before we could stop it
        live = page.locator(".st-key-training")
        try:
            text = live.first.inner_text(timeout=1000) if live.count() else ""
        except Exception:
            text = ""
        m = BATCH.search(text)
        if m:
            assert "Epoch 1 of 2" in text and int(m.group(2)) == per_epoch and int(m.group(1)) <= per_epoch, text
        if m and page.locator(".st-key-training [data-testid='stVegaLiteChart']").count() == 2:
            seen.add(int(m.group(1)))
        page.wait_for_timeout(100)
    if len(seen) < 2:
        server.log.flush()
        log = open(server.log.name).read()[-3000:]
        body = page.locator("body").inner_text()[-1500:]
        pytest.fail(f"the progress and curves never moved: batches seen {sorted(seen)}\n"
                    f"page: {body}\nserver log: {log}")
    if not page.locator(".st-key-result").count():
        # Meanwhile another browser session reads a drawn digit: training blocks no one.
        other = page.context.browser.new_page(base_url=server.url,
                                              viewport={"width": 1400, "height": 1000})
        other.set_default_timeout(60_000)
        other.goto("/")
        wait_hook(other, "prediction", lambda t: t.startswith("No digit yet"))
        draw(other, other.locator("canvas.upper-canvas"), DIGITS[7])
        wait_hook(other, "prediction", lambda t: t.startswith("7"))
        other.close()
        page.wait_for_timeout(300)  # let the charts finish drawing
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "train.png"))
        try:
            page.locator(".st-key-stop").get_by_role("button", name="Stop").first.click(timeout=10_000)
            # Stop is taken at once: the button goes, and the page says the training is
            # stopping or has stopped (then tests and saves the model trained so far).
            wait_hook(page, "training", lambda t: "Stopp" in t or page.locator(".st-key-result").count() > 0)
            expect(page.locator(".st-key-stop")).to_have_count(0)
        except PlaywrightTimeout:  # it finished while the other session drew
            expect(page.locator(".st-key-result")).to_be_visible()

    result = wait_hook(page, "result", lambda t: "New model: test accuracy" in t, 300_000)
    assert "Stopped after" in result or "Training finished" in result
    assert "Active model: test accuracy" in result
    assert page.locator(".st-key-training [data-testid='stVegaLiteChart']").count() == 2

    # A new model worse than the active one is said to be, and keeping the active one comes first.
    activate = page.locator(".st-key-activate button")
    if "worse than the active one" in result:
        expect(activate).to_have_text("Use the new model anyway")
        expect(page.locator(".st-key-keep button")).to_have_attribute("kind", "primary")
    else:
        expect(activate).to_have_attribute("kind", "primary")
    activate.click()
    wait_hook(page, "result", lambda t: "The new model is the active model" in t)
    name = re.search(r"fast-[\w-]+", sidebar_model(page)).group(0)
    assert all((server.models / "user" / f"{name}{suffix}").is_file() for suffix in (".keras", ".tflite", ".json"))

    # Another browser session reads with the new model (however little it learnt): no fallback.
    other = page.context.browser.new_page(base_url=server.url, viewport={"width": 1400, "height": 1000})
    other.set_default_timeout(60_000)
    other.goto("/")
    wait_hook(other, "prediction", lambda t: t.startswith("No digit yet"))
    assert name in sidebar_model(other)
    draw(other, other.locator("canvas.upper-canvas"), DIGITS[7])
    wait_hook(other, "prediction", lambda t: t[:1].isdigit() and "confident" in t)
    assert not other.get_by_text("Using the shipped model").count()
    other.close()

    # The models list: the new model is there, active; the shipped one can be chosen again.
    models = page.locator(".st-key-models")
    models.scroll_into_view_if_needed()
    expect(models.locator("[data-testid='stDataFrame']")).to_be_visible()
    chooser = models.get_by_role("combobox")
    chooser.click()
    page.get_by_role("option", name=re.compile("^shipped model")).click()
    models.get_by_role("button", name="Make it active").click()
    expect(page.get_by_test_id("stSidebar").get_by_text("Active model: shipped model")).to_be_visible()
    chooser.click()
    expect(page.get_by_role("option", name=re.compile(f"^{name} "))).to_be_visible()  # still there, to choose again
    page.keyboard.press("Escape")
