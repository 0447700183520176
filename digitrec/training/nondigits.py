"""What is not a digit: handwritten letters and rendered scribbles, shapes and crossed-out
digits, for the digit model's eleventh class ("not a digit") and for measuring how often
such a picture is still given a confident digit.

Letters come from ``letters/`` (Chars74K's hand-drawn letters, one of each by 30 people).
People are split by a hash of their number: a fifth are held out (never trained on) to
measure on. Some letters are written like digits by many people (:data:`LOOKALIKES`): an
``O`` is a 0, an ``l`` a 1, an ``S`` a 5 to most readers. The policy: they are neither
trained as "not a digit" nor counted against the model; the report gives what they are
read as, apart.

Scribbles are drawn here (:func:`scribble`), each kind a thing people put in a digit box
that is no digit: a tangle, hatching, a crossed-out digit, a star, an ``X``, a ``#``, a
polygon, a spiral. Seeded: the held-out ones use other seeds than training.

Every picture goes through :func:`digitrec.reading.normalize.normalize`, as a user's does.
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from digitrec.training.datasets import DataError, cached, normalize_all, read_sums

NOT_A_DIGIT = 10  # the class index of "not a digit"
LOOKALIKES = frozenset("OoIlZzSsBbGgq")  # letters many people write like a digit: neither trained nor counted
HELD_OUT_SHARE = 5  # one writer in this many is held out (by a hash of the writer's number)
KINDS = ("tangle", "hatching", "crossed_out", "star", "cross", "hash", "polygon", "spiral", "letter")
# a "letter" scribble: one of these in one of OpenCV's Hershey stroke fonts, leant, bent and
# written with any pen, so that the eleventh class sees more letters than 26 people wrote
LETTERS = "".join(c for c in "ACDEFHJKLMNPQRTUVWXYacdefhijkmnprtuvwxy" if c not in LOOKALIKES)
FONTS = ("FONT_HERSHEY_SIMPLEX", "FONT_HERSHEY_DUPLEX", "FONT_HERSHEY_COMPLEX", "FONT_HERSHEY_TRIPLEX",
         "FONT_HERSHEY_SCRIPT_SIMPLEX", "FONT_HERSHEY_SCRIPT_COMPLEX", "FONT_HERSHEY_PLAIN")
SIDE = 112  # scribbles are drawn on a canvas this many pixels wide


def held_out_writer(writer: str) -> bool:
    """True for the writers kept out of training (about one in HELD_OUT_SHARE)."""
    return int(hashlib.sha256(str(writer).encode()).hexdigest(), 16) % HELD_OUT_SHARE == 0


@dataclass(frozen=True)
class Letters:
    x: np.ndarray  # (N, 28, 28) uint8, as normalize made them
    chars: np.ndarray  # (N,) str
    writers: np.ndarray  # (N,) str
    found: np.ndarray  # (N,) bool: normalize found ink

    def part(self, held_out: bool, lookalikes: bool = False) -> Letters:
        """The held-out (or training) writers' letters; the lookalikes only, or all but them."""
        keep = np.array([held_out_writer(w) == held_out for w in self.writers])
        keep &= np.isin(self.chars, list(LOOKALIKES)) == lookalikes
        return Letters(self.x[keep], self.chars[keep], self.writers[keep], self.found[keep])


def letters_dir(data: str | Path | None) -> Path:
    from digitrec.training.datasets import find_data_dir

    return find_data_dir(data, "letters")


def load_letters(data: str | Path | None = None, verify: bool = True) -> Letters:
    """Every letter of ``letters/`` (next to MNIST's folder), verified against its
    SHA256SUMS and brought to 28x28 by normalize (cached on disk)."""
    directory = letters_dir(data)
    table = directory / "labels.csv"
    if not table.exists():
        raise DataError(f"{table} is missing: letters/ needs labels.csv and images/ (see its README)")
    rows = list(csv.DictReader(table.open()))
    sums = read_sums(directory) if verify else {}
    digest = hashlib.sha256()
    images = []
    for row in rows:
        raw = (directory / row["file"]).read_bytes()
        got = hashlib.sha256(raw).hexdigest()
        want = sums.get(row["file"])
        if verify and want and got != want:
            raise DataError(f"{directory / row['file']}: SHA-256 does not match SHA256SUMS; the file is corrupt")
        digest.update(got.encode())
        images.append(raw)

    def compute():
        gray = [cv2.imdecode(np.frombuffer(r, np.uint8), cv2.IMREAD_GRAYSCALE) for r in images]
        x, found = normalize_all(gray)
        return {"x": x, "found": found}

    from digitrec.training.datasets import preprocessing_version

    arrays, _ = cached(f"letters-{digest.hexdigest()[:16]}-{preprocessing_version()}", compute)
    return Letters(arrays["x"], np.array([r["char"] for r in rows]), np.array([r["writer"] for r in rows]),
                   arrays["found"].astype(bool))


# --- scribbles ----------------------------------------------------------------------------

def _pen(rng) -> int:
    return int(rng.integers(3, 10))


def _points(rng, n, margin=0.15):
    return rng.uniform(margin * SIDE, (1 - margin) * SIDE, size=(n, 2))


def _curve(points, steps=60) -> np.ndarray:
    """A smooth line through ``points`` (Catmull-Rom), as int32 polyline."""
    p = np.vstack([points[:1], points, points[-1:]])
    out = []
    for i in range(1, len(p) - 2):
        t = np.linspace(0, 1, max(2, steps // (len(p) - 3)))[:, None]
        a, b, c, d = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * b + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t ** 2
                          + (-a + 3 * b - 3 * c + d) * t ** 3))
    return np.round(np.vstack(out)).astype(np.int32)


def scribble(kind: str, rng: np.random.Generator, digit28: np.ndarray | None = None) -> np.ndarray:
    """One drawing of ``kind`` (:data:`KINDS`): dark strokes on white, SIDE x SIDE uint8.
    ``crossed_out`` needs a digit (28x28, ink bright) to cross out."""
    canvas = np.full((SIDE, SIDE), 255, np.uint8)
    pen = _pen(rng)
    c = SIDE / 2
    if kind == "tangle":  # a pen wandering back and forth
        cv2.polylines(canvas, [_curve(_points(rng, int(rng.integers(10, 18))))], False, 0, pen, cv2.LINE_AA)
    elif kind == "hatching":  # strokes back and forth, as when ink is scrubbed out
        n = int(rng.integers(6, 11))  # fewer would be a Z or a 2
        ys = np.linspace(0.2, 0.8, n) * SIDE + rng.normal(0, 3, n)
        xs = np.where(np.arange(n) % 2 == 0, 0.15, 0.85) * SIDE + rng.normal(0, 5, n)
        angle = rng.uniform(-0.6, 0.6)
        pts = np.stack([xs, ys], 1) - c
        pts = pts @ np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) + c
        cv2.polylines(canvas, [np.round(pts).astype(np.int32)], False, 0, pen, cv2.LINE_AA)
    elif kind == "crossed_out":  # a digit struck through many times
        if digit28 is None:
            raise ValueError("crossed_out needs a digit")
        big = cv2.resize(digit28, (int(0.7 * SIDE),) * 2, interpolation=cv2.INTER_CUBIC)
        off = (SIDE - big.shape[0]) // 2
        canvas[off: off + big.shape[0], off: off + big.shape[1]] = 255 - big
        n = int(rng.integers(4, 9))
        ys = np.linspace(0.2, 0.8, n) * SIDE
        xs = np.where(np.arange(n) % 2 == 0, 0.1, 0.9) * SIDE + rng.normal(0, 4, n)
        cv2.polylines(canvas, [np.stack([xs, ys], 1).round().astype(np.int32)], False, 0, pen, cv2.LINE_AA)
    elif kind in ("star", "cross"):  # lines through the middle: an X, an asterisk
        n = 2 if kind == "cross" else int(rng.integers(3, 5))
        for a in rng.uniform(0, np.pi) + np.arange(n) * np.pi / n + rng.normal(0, 0.1, n):
            r = SIDE * rng.uniform(0.3, 0.42)
            d = r * np.array([np.cos(a), np.sin(a)])
            start, end = np.round(c - d).astype(int), np.round(c + d).astype(int)
            cv2.line(canvas, tuple(start), tuple(end), 0, pen, cv2.LINE_AA)
    elif kind == "hash":  # a #, a grid
        for i in range(int(rng.integers(2, 4))):
            for vertical in (False, True):
                at = SIDE * (0.3 + 0.4 * i / 2) + rng.normal(0, 3)
                slant = rng.normal(0, 6)
                a, b = (at + slant, 0.15 * SIDE), (at - slant, 0.85 * SIDE)
                if not vertical:
                    a, b = a[::-1], b[::-1]
                cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), 0, pen, cv2.LINE_AA)
    elif kind == "polygon":  # a triangle, a square, a pentagon or a star outline, not a round 0
        n = int(rng.choice([3, 4, 5, 10]))
        angles = rng.uniform(0, 2 * np.pi) + np.arange(n) * 2 * np.pi / n
        radii = SIDE * rng.uniform(0.3, 0.42) * (np.where(np.arange(n) % 2, 0.45, 1.0) if n == 10 else 1.0)
        pts = c + np.stack([np.cos(angles), np.sin(angles)], 1) * np.asarray(radii).reshape(-1, 1)
        cv2.polylines(canvas, [np.round(pts).astype(np.int32)], True, 0, pen, cv2.LINE_AA)
    elif kind == "spiral":  # two turns or more, not a closed ring
        t = np.linspace(0, rng.uniform(4.5, 7) * np.pi, 200)
        r = SIDE * 0.42 * t / t[-1]
        pts = c + np.stack([np.cos(t), np.sin(t)], 1) * r[:, None]
        cv2.polylines(canvas, [np.round(pts).astype(np.int32)], False, 0, pen, cv2.LINE_AA)
    elif kind == "letter":
        canvas = _letter(rng)
    else:
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    return canvas


def _letter(rng: np.random.Generator) -> np.ndarray:
    """A letter of LETTERS in a Hershey font, any pen, leant and rotated a little, and bent
    by a smooth random displacement (as a hand is never a font)."""
    char = LETTERS[int(rng.integers(len(LETTERS)))]
    font = getattr(cv2, FONTS[int(rng.integers(len(FONTS)))]) | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
    pen = int(rng.integers(2, 9))
    (w, h), base = cv2.getTextSize(char, font, 1.0, pen)
    scale = 0.6 * SIDE / max(w, h + base, 1)
    (w, h), base = cv2.getTextSize(char, font, scale, pen)
    canvas = np.full((SIDE, SIDE), 255, np.uint8)
    cv2.putText(canvas, char, ((SIDE - w) // 2, (SIDE + h) // 2), font, scale, 0, pen, cv2.LINE_AA)
    angle, shear = rng.uniform(-15, 15), rng.uniform(-0.3, 0.3)
    m = cv2.getRotationMatrix2D((SIDE / 2, SIDE / 2), angle, 1.0)
    m[0, 1] += shear
    m[0, 2] -= shear * SIDE / 2
    canvas = cv2.warpAffine(canvas, m, (SIDE, SIDE), borderValue=255)
    field = [cv2.GaussianBlur(rng.uniform(-1, 1, (SIDE, SIDE)).astype(np.float32), (0, 0), 10) * 60 for _ in "xy"]
    gx, gy = np.meshgrid(np.arange(SIDE, dtype=np.float32), np.arange(SIDE, dtype=np.float32))
    return cv2.remap(canvas, gx + field[0], gy + field[1], cv2.INTER_LINEAR, borderValue=255)


def scribbles(n: int, seed: int, digits28: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` scribbles of every kind in turn, letters as often as all others together
    (``digits28``: the digits to cross out; without them that kind is left out), through
    normalize. Returns ((n', 28, 28) uint8
    of those with ink found, their kinds)."""
    rng = np.random.default_rng(seed)
    kinds = [k for k in KINDS if k != "crossed_out" or digits28 is not None]
    kinds += ["letter"] * (len(kinds) - 2)  # half of them letters: the likeliest thing that is no digit
    names, pictures = [], []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        digit = digits28[rng.integers(len(digits28))] if kind == "crossed_out" else None
        pictures.append(scribble(kind, rng, digit))
        names.append(kind)
    x, found = normalize_all(np.stack(pictures))
    return x[found], np.array(names)[found]


def training_set(data, digits28: np.ndarray, scribble_count: int, seed: int,
                 letter_copies: int = 1) -> tuple[np.ndarray, dict]:
    """The "not a digit" images to train on: the training writers' letters (lookalikes
    left out), each ``letter_copies`` times, and ``scribble_count`` scribbles. Returns (x,
    info for the card)."""
    if letter_copies < 1:
        raise ValueError(f"letter_copies must be 1 or more, not {letter_copies}")
    letters = load_letters(data).part(held_out=False)
    kept = np.repeat(letters.x[letters.found], letter_copies, axis=0)
    made, kinds = scribbles(scribble_count, seed, digits28)
    info = {"letters": int(letters.found.sum()), "letter_copies": int(letter_copies),
            "letter_writers": int(len(set(letters.writers))),
            "lookalikes_left_out": "".join(sorted(LOOKALIKES)), "scribbles": int(len(made)),
            "scribble_kinds": list(KINDS)}
    return np.concatenate([kept, made]), info


# --- measuring ------------------------------------------------------------------------------

HELD_OUT_SEED = 1_000_003  # the held-out scribbles' seed: never one a training run uses by default


def report(probabilities, x: np.ndarray, kinds: np.ndarray) -> dict:
    """How often pictures that are no digit get one: ``probabilities`` ((N, 28, 28) float32
    -> (N, 10 or 11), a Recognizer's) on ``x`` (uint8), grouped by ``kinds`` (a letter, a
    scribble's kind). "given a digit": the digit classes win; "confident": and at
    LOW_CONFIDENCE or more, shown without "not sure"."""
    from digitrec.reading.results import LOW_CONFIDENCE

    probs = probabilities(x.astype(np.float32) / 255.0)
    best = probs.argmax(1)
    digit = best < 10
    confident = digit & (probs.max(1) >= LOW_CONFIDENCE)

    def shares(mask):
        return {"n": int(mask.sum()), "given_a_digit": round(float(digit[mask].mean()), 4),
                "given_a_confident_digit": round(float(confident[mask].mean()), 4)}

    by_kind = {str(k): shares(kinds == k) for k in dict.fromkeys(kinds.tolist())}
    return {**shares(np.ones(len(x), bool)), "by_kind": by_kind}


def letters_report(probabilities, data=None) -> dict:
    """:func:`report` on the held-out writers' letters, the lookalikes apart (what they
    are read as, not counted)."""
    letters = load_letters(data)
    held = letters.part(held_out=True)
    out = report(probabilities, held.x[held.found], held.chars[held.found])
    out["writers"] = sorted(set(held.writers.tolist()))
    look = letters.part(held_out=True, lookalikes=True)
    if len(look.x):
        probs = probabilities(look.x.astype(np.float32) / 255.0)
        out["lookalikes_read_as"] = {
            c: ["not a digit" if b >= 10 else str(b) for b in probs[look.chars == c].argmax(1)]
            for c in sorted(set(look.chars.tolist()))}
    return out


def scribbles_report(probabilities, data=None, n: int = 800) -> dict:
    """:func:`report` on ``n`` scribbles drawn with a seed no training uses, the crossed-out
    digits being MNIST's test digits."""
    from digitrec.training.datasets import load

    digits = load("mnist", data).x_test
    x, kinds = scribbles(n, HELD_OUT_SEED, digits)
    return report(probabilities, x, kinds)
