"""A stand-in for ``python -m digitrec.server.worker`` in the jobs tests: it speaks the same
protocol (a config line in; progress, result or error lines out) without TensorFlow.

    python tests/fake_worker.py MODE     MODE: wait | fail | done | crash | worse

``worse`` saves a model at the config's ``out`` (the shipped model's files, its card
saying it reads 1.47 points fewer of MNIST's test digits).
"""
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "digitrec"


def send(**message):
    print(json.dumps(message), flush=True)


def main(mode: str) -> int:
    config = json.loads(sys.stdin.readline())
    card = {"preset": config["preset"], "epochs_completed": 0.5, "train_seconds": 1.0,
            "test": {"accuracy": 0.5}}
    if mode == "fail":
        send(error="RuntimeError: out of disk")
        return 1
    if mode == "crash":
        return 9  # no word at all
    send(progress={"total_steps": 100, "step": 1, "epoch": 0, "started": 0.0, "stopped": False,
                   "points": [{"step": 1, "epoch": 0.01, "loss": 2.0, "accuracy": 0.1}]})
    if mode == "wait":  # until "stop" (or the end of input)
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        send(progress={"total_steps": 100, "step": 2, "epoch": 0, "started": 0.0,
                       "stopped": True, "points": []})
    if mode == "worse":
        out = Path(config["out"])
        shipped = json.loads(SHIPPED.with_suffix(".json").read_text())
        card = {**shipped, "test": {**shipped["test"], "accuracy": shipped["test"]["accuracy"] - 0.0147},
                "epochs_completed": 0.5, "train_seconds": 1.0, "preset": config["preset"]}
        for suffix in (".keras", ".tflite"):
            shutil.copyfile(SHIPPED.with_suffix(suffix), out.with_suffix(suffix))
        out.with_suffix(".json").write_text(json.dumps(card))
        send(result={"card": card, "path": str(out)})
        return 0
    send(result={"card": card, "path": os.path.join(tempfile.gettempdir(), "never-saved.keras")})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
