"""Digits as mouse strokes, in [0, 1] canvas units: polylines a person might draw."""
import math


def _ellipse(cx, cy, rx, ry, n=24):
    return [(cx + rx * math.sin(2 * math.pi * i / n), cy - ry * math.cos(2 * math.pi * i / n))
            for i in range(n + 1)]


def place(strokes, x0, y0, scale):
    """Shrink a digit drawn in the unit square and move it elsewhere on the canvas."""
    return [[(x0 + x * scale, y0 + y * scale) for x, y in s] for s in strokes]


DIGITS = {
    0: [_ellipse(0.5, 0.5, 0.2, 0.32)],
    1: [[(0.42, 0.27), (0.53, 0.15), (0.53, 0.85)]],
    2: [[(0.3, 0.3), (0.4, 0.18), (0.55, 0.16), (0.68, 0.25), (0.68, 0.38), (0.3, 0.82),
         (0.72, 0.82)]],
    3: [[(0.3, 0.2), (0.6, 0.18), (0.68, 0.3), (0.55, 0.46), (0.42, 0.49), (0.58, 0.52),
         (0.7, 0.65), (0.62, 0.8), (0.3, 0.82)]],
    4: [[(0.52, 0.15), (0.25, 0.6), (0.75, 0.6)], [(0.6, 0.35), (0.6, 0.88)]],
    7: [[(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)]],
}
