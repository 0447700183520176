"""The recognizer: load a model once, then read digits and numbers through the one
preprocessing path (:mod:`digitrec.preprocess`).

The CLI and tests make their own :class:`Recognizer`; the Streamlit app caches one with
``st.cache_resource``. Inference never goes through ``model.predict``, whose per-call
overhead dominates for one small image: it runs in TFLite interpreters, with a traced
``tf.function`` as the fallback (see :class:`Recognizer`; ``benchmarks/inference.py``
measures every path).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec import preprocess

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
SHIPPED_MODEL = MODELS_DIR / "digitrec.keras"
LITE_CACHE = Path.home() / ".cache" / "digitrec" / "tflite"
NUM_CLASSES = 10
LOW_CONFIDENCE = 0.6  # below this a reading is shown, but marked as unsure
ROW_LOW_CONFIDENCE = 0.5  # a number the row reader finds less likely than this is marked as unsure


@dataclass
class Prediction:
    digit: int | None
    confidence: float = 0.0
    probabilities: np.ndarray | None = None
    input28: np.ndarray | None = None  # what the model saw
    reason: str | None = None  # why there is no digit
    box: tuple[int, int, int, int] | None = None  # where the digit is, original pixels

    @property
    def low_confidence(self) -> bool:
        return self.digit is not None and self.confidence < LOW_CONFIDENCE

    def to_dict(self) -> dict:
        if self.digit is None:
            return {"digit": None, "reason": self.reason}
        return {
            "digit": self.digit,
            "confidence": round(float(self.confidence), 4),
            "probabilities": [round(float(p), 4) for p in self.probabilities],
            "low_confidence": self.low_confidence,
        }


@dataclass
class Number:
    digits: list[Prediction] = field(default_factory=list)
    reason: str | None = None
    row_probability: float | None = None  # the row reader's P(this reading | row), where it read the row

    @property
    def text(self) -> str:
        return "".join(str(d.digit) for d in self.digits)

    @property
    def doubts(self) -> list[str]:
        """Why the reading may be wrong: digits the model is unsure of, and a row reader
        that finds the reading less likely than not. Empty when neither."""
        out = [f"digit {i + 1} ({d.digit}) read at {d.confidence:.0%}"
               for i, d in enumerate(self.digits) if d.low_confidence]
        if self.digits and self.row_probability is not None and self.row_probability < ROW_LOW_CONFIDENCE:
            out.append(f"the row reader gives this reading {self.row_probability:.0%}")
        return out

    @property
    def low_confidence(self) -> bool:
        return bool(self.doubts)

    def to_dict(self) -> dict:
        out = {
            "text": self.text or None,
            "digits": [{"digit": d.digit, "confidence": round(float(d.confidence), 4),
                        "box": list(d.box), "low_confidence": d.low_confidence}
                       for d in self.digits],
        }
        if self.digits:
            out["low_confidence"] = self.low_confidence
            out["row_probability"] = (None if self.row_probability is None
                                      else round(float(self.row_probability), 4))
        if self.reason:
            out["reason"] = self.reason
        return out


class _LiteRunner:
    """TFLite (LiteRT) interpreters for the model: one at batch 1 on one thread (about
    0.15 ms a digit, where a traced TensorFlow call costs 0.5-1 ms of dispatch), and one at
    batch :attr:`BATCH` on every core, made on first use (about 1.4x the throughput of the
    traced ``tf.function`` on the shipped model, measured interleaved; ``benchmarks/inference.py``).

    Interpreters are not thread-safe (one input buffer each): calls take a lock.
    """

    BATCH = 256

    def __init__(self, flatbuffer: bytes, threads: int | None = None):
        if threads is None:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self._flatbuffer, self._threads = flatbuffer, max(1, min(int(threads or 1), 8))
        self._one = self._interpreter(flatbuffer, 1, 1)
        self._many = None  # made on first use: Recognizer sends large batches to TensorFlow
        self._lock = threading.Lock()

    @staticmethod
    def _interpreter(flatbuffer: bytes, batch: int, threads: int):
        with warnings.catch_warnings():  # tf.lite.Interpreter warns that it moves to LiteRT
            warnings.simplefilter("ignore")
            interpreter = _interpreter_class()(model_content=flatbuffer, num_threads=threads)
        index = interpreter.get_input_details()[0]["index"]
        if batch != 1:
            interpreter.resize_tensor_input(index, [batch, 28, 28, 1], strict=False)
        interpreter.allocate_tensors()
        return interpreter, index, interpreter.get_output_details()[0]["index"]

    def __call__(self, x: np.ndarray, small: int = 8) -> np.ndarray:
        """(N, 28, 28, 1) float32 -> (N, 10): up to ``small`` images one at a time, more
        in batches of :attr:`BATCH` (the last one padded)."""
        out = np.empty((len(x), NUM_CLASSES), np.float32)
        with self._lock:
            if len(x) <= small:
                interpreter, inp, res = self._one
                for i in range(len(x)):
                    interpreter.set_tensor(inp, x[i: i + 1])
                    interpreter.invoke()
                    out[i] = interpreter.get_tensor(res)[0]
                return out
            if self._many is None:
                self._many = self._interpreter(self._flatbuffer, self.BATCH, self._threads)
            interpreter, inp, res = self._many
            pad = np.zeros((self.BATCH, 28, 28, 1), np.float32)
            for i in range(0, len(x), self.BATCH):
                chunk = x[i: i + self.BATCH]
                if len(chunk) < self.BATCH:
                    pad[: len(chunk)] = chunk
                    chunk = pad
                interpreter.set_tensor(inp, chunk)
                interpreter.invoke()
                out[i: i + self.BATCH] = interpreter.get_tensor(res)[: len(x) - i]
        return out


def _interpreter_class():
    try:  # the maintained package, when installed
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        return tf.lite.Interpreter


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lite_cache_candidates(path: Path, digest: str) -> list[Path]:
    """Where a converted model may live: beside the .keras file, else in the user cache."""
    tag = f"{digest[:16]}-tf{tf.__version__}"
    return [path.with_name(f".{path.stem}.{tag}.tflite"), LITE_CACHE / f"{path.stem}.{tag}.tflite"]


def convert_to_lite(forward, model: keras.Model | None = None) -> bytes:
    """The traced forward function as a float32 TFLite flatbuffer (seconds; cached by callers).

    Uses the converter's path that freezes the variables into constants: given the model as
    ``trackable_obj`` (TF 2.21), the converted model reads uninitialized batch-normalization
    variables and returns NaN. :class:`Recognizer` checks every flatbuffer against the Keras
    model before using it, so a converter change cannot go unnoticed.
    """
    import logging

    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # "provide trackable_obj": see above
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([forward.get_concrete_function()])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()
    finally:
        absl_logger.setLevel(level)


class Recognizer:
    """A loaded model and its card, with fast prediction.

    Inference runs in TFLite (LiteRT) interpreters (XNNPACK), converted from the model
    once, cached beside the ``.keras`` file (or in ``~/.cache/digitrec``) and checked
    against the Keras model before use: up to :attr:`SMALL_BATCH` images (one canvas digit,
    the digits of a number) one at a time on one thread, larger batches in batches of 256
    on every core. Until the interpreters are ready, and wherever TFLite is unavailable, a
    traced ``tf.function`` (in chunks of :attr:`CHUNK`) gives the same probabilities.

    ``runtime``: ``"auto"`` (the above, converting in a background thread when there is no
    cached file), ``"lite"`` (convert now, fail if TFLite fails) or ``"tf"`` (traced only).
    """

    SMALL_BATCH = 8  # up to this many images go through the batch-1 interpreter
    CHUNK = 1024  # the traced path runs large batches in chunks of this many

    def __init__(self, model: keras.Model, path: Path | None = None, card: dict | None = None,
                 runtime: str = "auto", verifier=None, row_reader=None):
        if runtime not in ("auto", "lite", "tf"):
            raise ValueError(f"runtime must be 'auto', 'lite' or 'tf', not {runtime!r}")
        self.model, self.path, self.card = model, path, card or {}
        self.verifier = verifier  # digitrec.verifier.Verifier for read_number, or None
        self.row_reader = row_reader  # digitrec.row_reader.RowReader for read_number, or None
        self._forward = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
            reduce_retracing=True,
        )
        self._lite: _LiteRunner | None = None
        self.lite_error: str | None = None
        self.probabilities(np.zeros((1, 28, 28), np.float32))  # trace once, now
        if runtime == "lite":
            self._setup_lite(strict=True)
        elif runtime == "auto":
            cached = self._cached_lite()
            if cached is not None:
                try:
                    self._start_lite(cached)
                except Exception:  # a stale or broken cache: convert afresh
                    cached = None
            if cached is None:
                self._lite_thread = threading.Thread(target=self._setup_lite, daemon=True,
                                                     name="digitrec-tflite")
                self._lite_thread.start()

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, runtime: str = "auto",
             verifier: bool = True, row_reader: bool = True) -> "Recognizer":
        """The model at ``path`` (default: the shipped one), with the shipped whole-digit
        verifier and row reader for :meth:`read_number` unless ``verifier`` or
        ``row_reader`` is False."""
        from digitrec import row_reader as row_reader_mod
        from digitrec import verifier as verifier_mod

        path = Path(path) if path else SHIPPED_MODEL
        if not path.exists():
            raise FileNotFoundError(f"model file {path} not found")
        model = keras.models.load_model(path, compile=False, safe_mode=True)
        card_file = path.with_suffix(".json")
        card = json.loads(card_file.read_text()) if card_file.exists() else {}
        return cls(model, path, card, runtime=runtime,
                   verifier=verifier_mod.shipped() if verifier else None,
                   row_reader=row_reader_mod.shipped() if row_reader else None)

    # --- the TFLite path ---------------------------------------------------------------

    @property
    def runtime(self) -> str:
        """Which path small batches take now: "tflite" or "tf.function"."""
        return "tflite" if self._lite is not None else "tf.function"

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until a background conversion is done; True when TFLite is in use."""
        thread = getattr(self, "_lite_thread", None)
        if thread is not None:
            thread.join(timeout)
        return self._lite is not None

    def _cached_lite(self) -> bytes | None:
        if self.path is None or not Path(self.path).exists():
            return None
        try:
            self._digest = _file_sha256(Path(self.path))
            for candidate in lite_cache_candidates(Path(self.path), self._digest):
                if candidate.exists():
                    return candidate.read_bytes()
        except OSError:
            pass
        return None

    def _start_lite(self, flatbuffer: bytes) -> None:
        runner = _LiteRunner(flatbuffer)
        probe = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
        expected = self._forward(tf.constant(probe)).numpy()
        if not np.allclose(runner(probe), expected, atol=1e-4):  # never serve a wrong model
            raise RuntimeError("the TFLite model disagrees with the Keras model")
        self._lite = runner

    def _setup_lite(self, strict: bool = False) -> None:
        try:
            flatbuffer = self._cached_lite() if strict else None
            if flatbuffer is not None:
                try:
                    return self._start_lite(flatbuffer)
                except RuntimeError:
                    pass
            flatbuffer = convert_to_lite(self._forward, self.model)
            self._start_lite(flatbuffer)  # checked against the Keras model before caching
            self._store_lite(flatbuffer)
        except Exception as exc:  # TFLite is an optimization: fall back to the traced path
            self.lite_error = f"{type(exc).__name__}: {exc}"
            if strict:
                raise

    def _store_lite(self, flatbuffer: bytes) -> None:
        if self.path is None or not hasattr(self, "_digest"):
            return
        for candidate in lite_cache_candidates(Path(self.path), self._digest):
            try:
                candidate.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=candidate.name, dir=candidate.parent)
                with os.fdopen(fd, "wb") as f:
                    f.write(flatbuffer)
                os.chmod(tmp, 0o644)
                os.replace(tmp, candidate)
                return
            except OSError:
                continue

    # --- prediction --------------------------------------------------------------------

    def probabilities(self, x28: np.ndarray) -> np.ndarray:
        """(N, 28, 28) float32 in [0, 1] -> (N, 10) probabilities."""
        x = np.ascontiguousarray(x28, np.float32).reshape(-1, 28, 28, 1)
        lite = self._lite
        if lite is not None:
            return lite(x, small=self.SMALL_BATCH)
        if len(x) <= self.CHUNK:
            return self._forward(tf.constant(x)).numpy()
        return np.concatenate([self._forward(tf.constant(x[i: i + self.CHUNK])).numpy()
                               for i in range(0, len(x), self.CHUNK)])

    def predict(self, image: np.ndarray) -> Prediction:
        """One digit in a user's image (any size, polarity, colour)."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images) -> list[Prediction]:
        """:meth:`predict` for several images, the model run once on all their digits."""
        preds: list[Prediction | None] = []
        norms = []
        for image in images:
            try:
                norms.append(preprocess.normalize(image))
                preds.append(None)
            except preprocess.NoDigit as exc:
                preds.append(Prediction(digit=None, reason=str(exc)))
        if norms:
            probs = iter(self.probabilities(np.stack([n.x28 for n in norms])))
            norm_iter = iter(norms)
            for i, pred in enumerate(preds):
                if pred is None:
                    p, norm = next(probs), next(norm_iter)
                    preds[i] = Prediction(int(p.argmax()), float(p.max()), p, norm.x28, box=norm.box)
        return preds

    def read_number(self, image: np.ndarray) -> Number:
        """The digits of a number written in one row, left to right.

        The row is over-segmented into pieces (groups of ink, cut where touching digits
        may meet); every run of consecutive pieces that could be one digit is read by the
        model (all in one batch), and dynamic programming over the pieces picks the
        reading whose digits the model is surest of, with priors on each digit's width
        and height for the row and on cutting or joining ink (:func:`candidate_score`), and
        the whole-digit verifier's opinion of each candidate (:mod:`digitrec.verifier`).
        Where the row reader (:mod:`digitrec.row_reader`) reads the row otherwise, the
        best path that reads as it does competes with that reading (:meth:`_second_reading`)."""
        try:
            candidates, pieces, height, ink = preprocess.number_candidates(image)
        except preprocess.NoDigit as exc:
            return Number(reason=str(exc))
        probs = self.probabilities(np.stack([c.digit.x28 for c in candidates]))
        whole = self.verifier(candidates) if self.verifier is not None else None
        path = best_path(candidates, probs, len(pieces), whole)
        digits = [int(probs[k].argmax()) for k in path]
        row_probability = None
        if self.row_reader is not None and path:
            path, digits, row_probability = self._second_reading(image, ink, candidates, probs, len(pieces),
                                                                 whole, path, digits)
        out = [Prediction(d, float(probs[k][d]), probs[k], candidates[k].digit.x28, box=candidates[k].digit.box)
               for k, d in zip(path, digits)]
        if not out:
            return Number(reason="only specks or lines: no digit-sized stroke found")
        return Number(out, row_probability=row_probability)

    def _second_reading(self, image, ink, candidates, probs, n, whole, path, digits):
        """(path, digits, P(digits | row)): the path's reading, or the row reader's where
        the two together prefer it, and the row reader's probability of the reading kept
        (None where it does not read the row). Each reading is scored by its best path's
        total :func:`candidate_score` plus ROW_READER_WEIGHT x the row reader's
        log P(digits | row); the row reader's reading counts only when some path through
        the candidates reads it, so its digits keep boxes."""
        from digitrec.row_reader import MAX_DIGITS, greedy_text, log_likelihood

        if len(digits) > MAX_DIGITS:  # longer than any row it was trained on
            return path, digits, None
        columns = self.row_reader(preprocess.row_strip(image, ink))
        other = greedy_text(columns)
        readings = [(path, digits)]
        if other and other != digits and len(other) <= MAX_DIGITS:
            other_path = best_path(candidates, probs, n, whole, digits=other)
            if other_path:
                readings.append((other_path, other))
        log_p = [log_likelihood(columns, d) for _, d in readings]

        def total(i):
            p, d = readings[i]
            return (sum(candidate_score(candidates[k], _only(probs[k], c), None if whole is None else whole[k])
                        for k, c in zip(p, d))
                    + ROW_READER_WEIGHT * log_p[i])

        best = max(range(len(readings)), key=total)  # the path's reading on a tie
        return (*readings[best], float(np.exp(log_p[best])))


DIGIT_BONUS = 0.3  # read_number: log-probability credited per digit (a sum of logs favours few)
CUT_COST = 0.4  # per edge of a digit cut through ink, plus CUT_STROKE_COST per stroke beyond one
CUT_STROKE_COST = 0.25
JOIN_COST = 0.3  # per extra group of ink a digit joins, plus JOIN_GAP_COST x gap / height
JOIN_GAP_COST = 2.0
SHORT = 0.75  # a digit shorter than this x the row's height is suspect (a fragment)
NARROW = 0.3  # a digit other than 1 narrower than this x the row's height is suspect
WIDE = 1.0  # any digit wider than this x the row's height is suspect
WHOLE_WEIGHT = 0.25  # x the verifier's log-odds that a candidate is one whole digit
WHOLE_CLIP = 1e-4  # its probabilities are kept within [this, 1 - this]


ROW_READER_WEIGHT = 1.0  # x the row reader's log P(digits | row), beside a path's score


def _only(p: np.ndarray, digit: int) -> np.ndarray:
    """Probabilities that allow ``digit`` only (the others nearly impossible)."""
    out = np.full_like(p, 1e-9)
    out[digit] = p[digit]
    return out


def best_path(candidates, probs: np.ndarray, n: int, whole: np.ndarray | None = None,
              digits: list[int] | None = None) -> list[int]:
    """Dynamic programming over ``n`` pieces: the indices of the candidates that cover
    them left to right with the highest total :func:`candidate_score` (``whole``: the
    verifier's P(whole digit) for each candidate, if there is one). A piece that is a
    whole group of ink much shorter than a digit (a speck, a stray mark) may be left out,
    at SKIP_COST.

    With ``digits``, only paths that read exactly these digits, in order, count: each
    candidate is scored as the digit it stands for. [] when no path reads them."""
    k = 0 if digits is None else len(digits)
    best = np.full((n + 1, k + 1), -np.inf)  # best[piece, digits read so far]
    best[0, 0] = 0.0
    back: dict = {}
    starts: dict = {}
    for i, c in enumerate(candidates):
        starts.setdefault(c.first, []).append(i)
    skippable = {c.first for c in candidates if c.first == c.last and not c.cut_left
                 and not c.cut_right and c.height < SKIP_HEIGHT}
    for f in range(n):
        for t in range(k + 1):
            here = best[f, t]
            if here == -np.inf:
                continue
            if f in skippable and here - SKIP_COST > best[f + 1, t]:
                best[f + 1, t], back[(f + 1, t)] = here - SKIP_COST, (f, t, None)
            if digits is not None and t == k:
                continue
            nt = t if digits is None else t + 1
            for i in starts.get(f, ()):
                c = candidates[i]
                p = probs[i] if digits is None else _only(probs[i], digits[t])
                score = here + candidate_score(c, p, None if whole is None else whole[i])
                if score > best[c.last + 1, nt]:
                    best[c.last + 1, nt], back[(c.last + 1, nt)] = score, (f, t, i)
    path, state = [], (n, k)
    while state in back:
        f, t, i = back[state]
        if i is not None:
            path.append(i)
        state = (f, t)
    return path[::-1]


SKIP_HEIGHT = 0.5  # a group of ink shorter than this x the row's height may be no digit...
SKIP_COST = 1.0  # ...at this cost


def candidate_score(c, p: np.ndarray, whole: float | None = None) -> float:
    """How good ``c`` (a :class:`digitrec.preprocess.Candidate`) is as one digit of a
    path: the model's log-probability of its best class, given the class's width prior,
    plus the priors on cutting and joining ink, plus WHOLE_WEIGHT x the log-odds that it
    is one whole digit (``whole``, from :mod:`digitrec.verifier`) when there is one."""
    logp = np.log(np.maximum(p, 1e-9))
    width_cost = np.full(NUM_CLASSES, max(0.0, c.width - WIDE) * 10.0)
    width_cost[np.arange(NUM_CLASSES) != 1] += max(0.0, NARROW - c.width) * 20.0
    score = float((logp - width_cost).max()) + DIGIT_BONUS
    score -= max(0.0, SHORT - c.height) * 10.0
    for strokes in (c.cut_left, c.cut_right):  # each cut is shared by two digits
        if strokes:
            score -= (CUT_COST + CUT_STROKE_COST * max(0.0, strokes - 1)) / 2
    score -= (c.groups - 1) * JOIN_COST + JOIN_GAP_COST * c.gap
    if whole is not None:
        w = min(max(float(whole), WHOLE_CLIP), 1.0 - WHOLE_CLIP)
        score += WHOLE_WEIGHT * float(np.log(w / (1.0 - w)))
    return score


def read_number(image: np.ndarray, recognizer: Recognizer | None = None) -> Number:
    """Module-level convenience: ``digitrec.read_number(image)``."""
    return (recognizer or Recognizer.load()).read_number(image)
