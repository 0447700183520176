"""The installable package: the wheel carries the shipped networks and the ``digitrec``
command, and an installed digitrec reads, keeps user models and switches the active
model without a checkout beside it."""
from __future__ import annotations

import configparser
import email
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from digitrec import store

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ("digitrec", "detector", "recognizer")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (a build in the checkout would leave
    build/ behind, and reuse what an earlier one left), without build isolation."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    left_out = shutil.ignore_patterns("__pycache__", "user", "candidates", "active.json", "samples.sqlite3*",
                                      "*.confusion.png", ".*.tmp*")
    for name in ("digitrec", "models"):
        shutil.copytree(ROOT / name, src / name, ignore=left_out)
    out = tmp_path_factory.mktemp("wheels")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--no-cache-dir", "-q", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("digitrec-*.whl")
    return built


def test_the_wheel_carries_the_shipped_networks_and_their_cards(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for network in NETWORKS:
            for suffix in (".tflite", ".json"):
                inside = f"digitrec/shipped/{network}{suffix}"
                assert inside in names, inside
                assert _sha(z.read(inside)) == _sha((store.SHIPPED_DIR / f"{network}{suffix}").read_bytes())
        # of the training-only .keras files, only the digit model's (the Train page fine-tunes it)
        assert [n for n in names if n.endswith(".keras")] == ["digitrec/shipped/digitrec.keras"]
        assert "digitrec/training/labels/danish_boxes.csv" in names
        assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "pages/"))]


def test_the_wheel_declares_the_command_and_reads_without_tensorflow(wheel):
    with zipfile.ZipFile(wheel) as z:
        info = next(n.rsplit("/", 1)[0] for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        points = configparser.ConfigParser()
        points.read_string(z.read(f"{info}/entry_points.txt").decode())
        metadata = email.message_from_bytes(z.read(f"{info}/METADATA"))
    assert points["console_scripts"]["digitrec"] == "digitrec.cli:main"
    required = metadata.get_all("Requires-Dist")
    always = {re.match(r"[\w.-]+", r).group() for r in required if "extra ==" not in r}
    assert {"ai-edge-litert", "opencv-python-headless", "numpy", "pillow"} <= always
    assert not always & {"tensorflow", "streamlit", "matplotlib", "ray"}
    extras = set(metadata.get_all("Provides-Extra"))
    assert {"train", "app", "cluster", "dev", "plots"} <= extras
    assert any(r.startswith("tensorflow") and 'extra == "train"' in r for r in required)


INSTALLED = """
import json, shutil, sys
from digitrec import load_image, store
from digitrec.reading.digits import Recognizer
from digitrec.server import registry

assert not store.FROM_CHECKOUT and store.SHIPPED_DIR.parts[-2:] == ("digitrec", "shipped"), store.SHIPPED_DIR
reading = Recognizer.load().read(load_image(sys.argv[1]))
user = store.user_dir()
user.mkdir(parents=True)
for suffix in store.SUFFIXES:
    shutil.copy(store.DIGIT_MODEL.with_suffix(suffix), user / f"mine{suffix}")
before = registry.active_status()
registry.set_active(user / "mine.keras")
print(json.dumps({"read": reading.text, "models_dir": str(store.models_dir()),
                  "before": [str(before[0]), before[1]], "active": str(registry.active_model_path()),
                  "active_reads": Recognizer.load(registry.active_model_path()).predict(load_image(sys.argv[2])).digit,
                  "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.parametrize("chosen", [False, True], ids=["default-models-dir", "DIGITREC_MODELS_DIR"])
def test_an_installed_digitrec_reads_and_keeps_user_models_outside_its_own_folder(
        wheel, tmp_path, mnist, recognizer, chosen):
    """The wheel unpacked as an installer would (no checkout on the import path, run from
    another folder): the shipped networks come from digitrec.shipped and read as the
    checkout's do, user models go to the user's data folder (or $DIGITREC_MODELS_DIR), and
    the registry activates one there."""
    import json

    import cv2

    from tests.conftest import number_rows, paper_digit

    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    (number, _, _), = number_rows(mnist, 1, seed=3)
    cv2.imwrite(str(tmp_path / "number.png"), number)
    cv2.imwrite(str(tmp_path / "seven.png"), paper_digit(mnist.x_test[0]))
    env = {k: v for k, v in os.environ.items() if k not in (store.ENV_VAR, "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "data-home"))
    if chosen:
        env[store.ENV_VAR] = str(tmp_path / "chosen")
    work = tmp_path / "elsewhere"
    work.mkdir()
    done = subprocess.run([sys.executable, "-c", INSTALLED, str(tmp_path / "number.png"), str(tmp_path / "seven.png")],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    expected = tmp_path / ("chosen" if chosen else "data-home/digitrec")
    assert result["models_dir"] == str(expected)
    assert result["before"] == [str(site / "digitrec" / "shipped" / "digitrec.keras"), None]
    assert result["active"] == str(expected / "user" / "mine.keras") and result["active_reads"] == 7
    assert result["read"] == recognizer.read(number).text and result["tensorflow"] is False
    shipped = {p.name for p in (site / "digitrec" / "shipped").iterdir()} - {"__pycache__"}
    assert shipped == {"__init__.py", "digitrec.keras"} | {f"{n}{s}" for n in NETWORKS for s in (".tflite", ".json")}


def test_a_checkout_keeps_its_models_in_its_models_folder(monkeypatch, tmp_path):
    """From a checkout the shipped networks and what the app writes are the repository's
    models/ (as before packaging); $DIGITREC_MODELS_DIR still moves the latter."""
    assert store.FROM_CHECKOUT and store.SHIPPED_DIR == ROOT / "models"
    monkeypatch.delenv(store.ENV_VAR, raising=False)
    assert store.models_dir() == ROOT / "models" and store.user_dir() == ROOT / "models" / "user"
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path))
    assert store.models_dir() == tmp_path and store.DIGIT_MODEL == ROOT / "models" / "digitrec.keras"
