"""Hardening in a real Chromium against `streamlit run`: the whole bad-file list through the
Upload page, uploads never written to disk under the visitor's names, an oversized upload
refused, and the server still serving afterwards."""
import os
import re
import tempfile
import uuid

import pytest

from tests.conftest import ROOT, bad_files, check_answer
from tests.e2e.helpers import wait_hook

pytestmark = pytest.mark.e2e


def answered(text: str) -> bool:
    return text[:1].isdigit() or text.startswith(("No digit", "Cannot read"))


def test_upload_page_every_bad_file(page, server, mnist):
    tag = uuid.uuid4().hex
    files = bad_files(mnist)
    page.goto("/upload")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        [{"name": f"{tag}-{name}", "mimeType": "image/png", "buffer": raw} for name, raw, _ in files])
    for i, (name, _, expected) in enumerate(files):
        text = wait_hook(page, f"prediction-{i}", answered, timeout_ms=120_000)
        check_answer(text, f"{tag}-{name}", expected)
    assert not page.locator("[data-testid='stException']").count()
    found = []
    for top in {ROOT, tempfile.gettempdir(), str(server.models)}:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", "node_modules")]
            found += [os.path.join(dirpath, f) for f in filenames if tag in f]
    assert not found  # decoded in memory, never saved under the names sent


def test_oversized_upload_is_refused(page):
    """The page refuses a file over 10 MB, and so does the server when a client skips the
    page's check (the same upload request replayed with 11 MB: HTTP 413)."""
    big = b"\x89PNG" + b"\0" * (11 * 2**20)
    page.goto("/upload")
    drop = page.locator("[data-testid='stFileUploaderDropzoneInput']")
    drop.set_input_files([{"name": "big.png", "mimeType": "image/png", "buffer": big}])
    page.get_by_text(re.compile("File must be .* or smaller")).first.wait_for()
    assert not page.locator(".st-key-prediction-0").count()

    page.goto("/upload")
    with page.expect_request(lambda r: r.method == "PUT" and "upload_file" in r.url) as info:
        drop.set_input_files([{"name": "small.png", "mimeType": "image/png", "buffer": b"tiny"}])
    request = info.value
    headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-")}
    response = page.request.put(request.url, headers=headers, multipart={
        "file": {"name": "big.png", "mimeType": "image/png", "buffer": big}})
    assert response.status == 413, (response.status, response.text()[:200])
    wait_hook(page, "prediction-0", answered)  # the page still answers (the tiny file: an error)
