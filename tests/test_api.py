"""The HTTP API's contracts: /health, one and several pictures answered with the CLI's
JSON, bad and oversized input refused with a JSON error, the API key, concurrent
requests answered as one at a time, interpreters started at once keeping stderr, and
``python -m digitrec serve`` as a real server."""
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from digitrec.api import KEY_ENV, create_app
from digitrec.cli import main
from digitrec.reading.decode import MAX_BYTES, ImageError, load_image
from tests.conftest import ROOT, data_dir, paper_digit, png_declaring, wait_for

PNG = "image/png"


@pytest.fixture(scope="module")
def client(recognizer):
    with TestClient(create_app(recognizer, api_key="")) as c:
        yield c


@pytest.fixture(scope="module")
def pictures(tmp_path_factory, mnist):
    """Files the CLI and the API both read: two digits on paper, a blank page, three real
    cheque amounts (orand-train), a page that is not a picture."""
    d = tmp_path_factory.mktemp("api")
    out = {}
    for name, image in (("seven.png", paper_digit(mnist.x_test[0])), ("two.png", paper_digit(mnist.x_test[1])),
                        ("blank.png", np.full((120, 160), 250, np.uint8))):
        out[name] = d / name
        cv2.imwrite(str(out[name]), image)
    orand = data_dir().parent / "orand-train" / "images" if data_dir() else None
    amounts = sorted(orand.glob("*.jpg"))[:3] if orand and orand.is_dir() else []
    if not amounts:
        pytest.skip("orand-train not available beside MNIST")
    for i, path in enumerate(amounts):
        out[f"amount{i}"] = path
    out["page.png"] = d / "page.png"
    out["page.png"].write_bytes(b"<!DOCTYPE html><html><body>not a picture</body></html>")
    return out


def sent(*paths):
    """The multipart files for ``paths``, each sent under its path (the CLI's ``file``)."""
    return [("file", (str(p), p.read_bytes(), PNG)) for p in paths]


def cli_lines(capsys, *argv) -> list[dict]:
    main(list(argv))
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_health_names_the_models(client, recognizer):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["api_key_required"] is False
    assert body["digit_model"] == {"path": str(recognizer.path), "test": recognizer.card["test"]}
    assert body["detector"].endswith("detector.tflite") and body["recognizer"].endswith("recognizer.tflite")


def test_predict_one_picture_is_the_cli_object(client, pictures, capsys):
    for name in ("seven.png", "blank.png"):
        (expected,) = cli_lines(capsys, "predict", "--json", str(pictures[name]))
        r = client.post("/v1/predict", files=sent(pictures[name]))
        assert r.status_code == 200
        assert r.json() == expected
    assert r.json()["digit"] is None and r.json()["reason"]  # the blank page: no digit is an answer


def test_several_pictures_are_the_cli_lines_in_order(client, pictures, capsys):
    names = ["amount0", "seven.png", "amount1", "amount2"]
    paths = [pictures[n] for n in names]
    r = client.post("/v1/read", files=sent(*paths))
    assert r.status_code == 200
    assert r.json() == {"results": cli_lines(capsys, "read", "--json", *map(str, paths))}
    assert all(record["text"] for record in r.json()["results"])
    r = client.post("/v1/predict", files=sent(pictures["two.png"], pictures["seven.png"]))
    assert [record["digit"] for record in r.json()["results"]] == [2, 7]


def test_a_picture_that_cannot_be_read_is_a_json_error(client, pictures):
    with pytest.raises(ImageError) as refused:
        load_image(pictures["page.png"])
    r = client.post("/v1/read", files=sent(pictures["seven.png"], pictures["page.png"]))
    assert r.status_code == 400
    assert r.json() == {"error": str(refused.value), "file": str(pictures["page.png"])}
    r = client.post("/v1/predict", files=[("file", ("empty.png", b"", PNG))])
    assert r.status_code == 400 and r.json() == {"error": "the file is empty (0 bytes)", "file": "empty.png"}


@pytest.mark.parametrize("request_kw", [{}, {"data": {"picture": "x"}}, {"data": {"file": "not a file"}},
                                        {"content": b"\x89PNG...", "headers": {"content-type": PNG}}])
def test_no_file_field_is_a_json_error(client, request_kw):
    r = client.post("/v1/predict", **request_kw)
    assert r.status_code == 422
    assert "field named 'file'" in r.json()["error"]


def test_too_large_is_413(client, recognizer):
    big = b"\0" * (MAX_BYTES + 1)
    r = client.post("/v1/predict", files=[("file", ("big.png", big, PNG))])
    assert r.status_code == 413
    assert r.json() == {"error": f"file is {len(big) / 1e6:.1f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB",
                        "file": "big.png"}
    for bomb in (png_declaring(50_000, 50_000), png_declaring(8_000, 8_000)):  # PIL's limit, then ours
        with pytest.raises(ImageError) as refused:
            load_image(bomb)
        r = client.post("/v1/read", files=[("file", ("bomb.png", bomb, PNG))])
        assert r.status_code == 413 and r.json() == {"error": str(refused.value), "file": "bomb.png"}
    # The body as a whole: two pictures where a server takes one, refused as it arrives.
    with TestClient(create_app(recognizer, api_key="", max_files=1)) as one:
        half = b"\0" * (MAX_BYTES // 2 + 2**20)
        r = one.post("/v1/predict", files=[("file", ("a.png", half, PNG)), ("file", ("b.png", half, PNG))])
        assert r.status_code == 413 and "send at most 1 pictures" in r.json()["error"]
        # The same body streamed (chunked, no Content-Length): counted as it arrives.
        chunks = [b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"]
        chunks += [b"\0" * 2**20] * 13
        r = one.post("/v1/predict", content=iter(chunks), headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413 and "send at most 1 pictures" in r.json()["error"]


def test_too_many_pictures_is_a_json_error(client, pictures):
    r = client.post("/v1/predict", files=sent(*[pictures["seven.png"]] * 17))
    assert r.status_code == 400 and "16" in r.json()["error"]


def test_api_key_required_when_set(recognizer, pictures, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "s3cret")
    with TestClient(create_app(recognizer, max_files=1)) as c:
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = c.post("/v1/predict", files=sent(pictures["seven.png"]), headers=headers)
            assert r.status_code == 401, headers
            assert "API key" in r.json()["error"]
        for headers in ({"X-API-Key": "s3cret"}, {"Authorization": "Bearer s3cret"}):
            r = c.post("/v1/predict", files=sent(pictures["seven.png"]), headers=headers)
            assert r.status_code == 200 and r.json()["digit"] == 7
        # Refused before the body is read: an oversized body without the key is a 401, not a 413.
        half = b"\0" * (MAX_BYTES // 2 + 2**20)
        r = c.post("/v1/read", files=[("file", ("a.png", half, PNG)), ("file", ("b.png", half, PNG))])
        assert r.status_code == 401
        r = c.post("/v1/read", files=[("file", ("a.png", half, PNG)), ("file", ("b.png", half, PNG))],
                   headers={"X-API-Key": "s3cret"})
        assert r.status_code == 413
        health = c.get("/health")
        assert health.status_code == 200 and health.json()["api_key_required"] is True
        schema = c.get("/openapi.json").json()
        assert {"APIKeyHeader", "HTTPBearer"} <= set(schema["components"]["securitySchemes"])


def test_openapi_summarises_each_endpoint(client):
    schema = client.get("/openapi.json").json()
    for path, method in (("/health", "get"), ("/v1/predict", "post"), ("/v1/read", "post")):
        assert schema["paths"][path][method]["summary"]
    assert "results" in schema["info"]["description"]
    assert client.get("/docs").status_code == 200


def test_concurrent_requests_answer_as_one_at_a_time(recognizer, pictures):
    """Sixteen requests at once over both endpoints (a fresh Recognizer: its number
    networks loaded at startup) answer exactly what each answers alone."""
    from digitrec.reading.digits import Recognizer

    jobs = [("/v1/read", pictures[f"amount{i % 3}"]) if i % 2 else ("/v1/predict", pictures["seven.png"])
            for i in range(32)]
    with TestClient(create_app(Recognizer.load(), api_key="")) as c:
        alone = {job: c.post(job[0], files=sent(job[1])).json() for job in set(jobs)}
        with ThreadPoolExecutor(16) as pool:
            together = list(pool.map(lambda job: c.post(job[0], files=sent(job[1])), jobs))
    assert [r.status_code for r in together] == [200] * len(jobs)
    assert [r.json() for r in together] == [alone[job] for job in jobs]


STARTS_AT_ONCE = """
import os, threading
from digitrec import store
from digitrec.reading import engine

def start():
    for _ in range(10):
        engine.Network(store.lite_path(store.DIGIT_MODEL))

threads = [threading.Thread(target=start) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
os.write(2, b"the log still reaches stderr")
"""


def test_interpreters_started_at_once_keep_stderr():
    """A server's log is its stderr: interpreters started in several threads at once (a
    network's first large batch in each of two requests) give it back each time."""
    proc = subprocess.run([sys.executable, "-c", STARTS_AT_ONCE], cwd=ROOT, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.endswith(b"the log still reaches stderr")


def test_serve_with_a_missing_model_is_one_line(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "nope.keras"), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not found" in err and "Traceback" not in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_a_real_server(pictures, recognizer, tmp_path):
    import httpx2

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    log = open(tmp_path / "server.log", "w+")
    server = subprocess.Popen([sys.executable, "-m", "digitrec", "serve", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert server.poll() is None, (tmp_path / "server.log").read_text()
        try:
            return urllib.request.urlopen(url + "/health", timeout=2).status == 200
        except OSError:
            return False

    try:
        wait_for(up, timeout=120)
        amount = pictures["amount0"]
        r = httpx2.post(url + "/v1/read", files=sent(amount), timeout=60)
        assert r.status_code == 200
        assert r.json() == {"file": str(amount), **recognizer.read(load_image(amount)).to_dict()}
    finally:
        server.terminate()
        code = server.wait(timeout=30)
    text = (tmp_path / "server.log").read_text()
    assert code in (0, -signal.SIGTERM), text  # uvicorn shuts down, then ends as the signal asked
    assert "Finished server process" in text and "Traceback" not in text
    assert '"POST /v1/read HTTP/1.1" 200' in text
