"""
The look of a synthetic scene: per-person clothing colors (:func:`palette`), clothing
textures (:func:`texture`) and the cluttered background (:func:`background`).

Colors are BGR, as OpenCV writes them. Every function draws from ``rng`` only, in a fixed
order, so a scene depends only on its generator's state.
"""
import math

import cv2
import numpy as np

from .primitives import NUM_PART_LABELS, PART_LABELS

__all__ = ["palette", "texture", "background"]

_SKIN = np.array([[189, 224, 255], [160, 200, 240], [120, 170, 220], [90, 135, 190], [60, 95, 140], [45, 65, 100]])
_HAIR = np.array([[20, 20, 20], [30, 45, 70], [40, 80, 130], [120, 170, 210], [150, 150, 150], [25, 25, 60]])


def _hsv_color(rng, s_range=(40, 255), v_range=(40, 255)):
    hsv = np.array([[[rng.integers(0, 180), rng.integers(*s_range), rng.integers(*v_range)]]], dtype=np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.int64)


def _jitter(rng, color, amount):
    return np.clip(color + rng.integers(-amount, amount + 1, 3), 0, 255)


def palette(rng, like=None):
    """(NUM_PART_LABELS, 3) BGR colors indexed by part label; ``like``: a palette to copy, jittered."""
    pal = np.zeros((NUM_PART_LABELS, 3), dtype=np.int64)
    if like is not None:
        for label in range(1, NUM_PART_LABELS):
            pal[label] = _jitter(rng, like[label], 14)
        return pal
    pal[PART_LABELS["skin"]] = _jitter(rng, _SKIN[rng.integers(len(_SKIN))], 12)
    pal[PART_LABELS["hair"]] = _jitter(rng, _HAIR[rng.integers(len(_HAIR))], 10)
    pal[PART_LABELS["shirt"]] = _hsv_color(rng)
    pal[PART_LABELS["pants"]] = _hsv_color(rng, (20, 200), (30, 200))
    pal[PART_LABELS["shoes"]] = _hsv_color(rng, (0, 120), (10, 90))
    pal[PART_LABELS["skirt"]] = _hsv_color(rng)
    pal[PART_LABELS["coat"]] = _hsv_color(rng, (10, 180), (30, 200))
    pal[PART_LABELS["bag"]] = _hsv_color(rng, (0, 220), (20, 200))
    pal[PART_LABELS["hat"]] = _hsv_color(rng)
    return pal


def texture(rng, h, w, x0, y0):
    """(h, w) float32 brightness factor: plain, stripes or checks, on image coordinates."""
    kind = rng.integers(4)
    yy, xx = np.mgrid[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
    if kind == 0:
        return np.full((h, w), rng.uniform(0.9, 1.1), dtype=np.float32)
    period = rng.uniform(3.0, 9.0)
    amp = rng.uniform(0.15, 0.35)
    if kind == 3:
        checks = ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float32)
        return 1.0 - amp * checks
    theta = rng.uniform(0, math.pi) if kind == 2 else rng.choice([0.0, math.pi / 2])
    phase = np.sin(2 * math.pi * (xx * math.cos(theta) + yy * math.sin(theta)) / period)
    return (1.0 - amp * (phase > 0)).astype(np.float32)


def _clutter_color(rng):
    """A background shape's color: 30 % of them in skin or clothing colors."""
    if rng.random() < 0.3:
        color = _jitter(rng, _SKIN[rng.integers(len(_SKIN))], 15) if rng.random() < 0.5 else _hsv_color(rng)
    else:
        color = _hsv_color(rng, (0, 255), (20, 255))
    return tuple(int(c) for c in color)


def _draw_clutter_shape(rng, img):
    """One random shape on ``img`` (H, W, 3) uint8, in place: a rectangle, disc, ellipse,
    limb-like bar, polygon or striped panel, possibly cut by the border."""
    h, w = img.shape[:2]
    color = _clutter_color(rng)
    kind = rng.integers(6)
    cx, cy = int(rng.integers(-w // 8, w + w // 8)), int(rng.integers(-h // 8, h + h // 8))
    size = int(rng.integers(6, max(h, w) // 3))
    if kind == 0:
        cv2.rectangle(img, (cx, cy), (cx + size, cy + int(rng.integers(6, max(h, w) // 2))), color, -1)
    elif kind == 1:
        cv2.circle(img, (cx, cy), size // 2, color, -1)
    elif kind == 2:
        axes = (size // 2, int(rng.integers(3, size // 2 + 4)))
        cv2.ellipse(img, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
    elif kind == 3:  # limb-like bar
        end = (cx + int(rng.integers(-size, size + 1)), cy + int(rng.integers(-size, size + 1)))
        cv2.line(img, (cx, cy), end, color, int(rng.integers(3, 12)))
    elif kind == 4:
        pts = np.stack([cx + rng.integers(-size, size + 1, 5), cy + rng.integers(-size, size + 1, 5)], 1)
        cv2.fillPoly(img, [pts.astype(np.int32)], color)
    else:  # striped panel
        x0, y0 = cx, cy
        x1, y1 = cx + size, cy + int(rng.integers(6, max(h, w) // 2))
        cv2.rectangle(img, (x0, y0), (x1, y1), color, -1)
        other = tuple(int(c) for c in _hsv_color(rng))
        step = int(rng.integers(3, 9))
        for k in range(x0, x1, 2 * step):
            cv2.rectangle(img, (k, y0), (k + step - 1, y1), other, -1)


def background(rng, h, w):
    """(h, w, 3) uint8 BGR: a cluttered, textured background (gradient, low-frequency noise and
    random shapes, some of them in skin or clothing colors)."""
    c0, c1 = _hsv_color(rng, (0, 200), (40, 230)), _hsv_color(rng, (0, 200), (40, 230))
    a = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx * math.cos(a) + yy * math.sin(a)) / max(h, w)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    coarse = rng.normal(0, 14, (h // 16 + 2, w // 16 + 2, 3)).astype(np.float32)
    img += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(10, 26))):
        _draw_clutter_shape(rng, img)
    # posterized (steps of 6) so that the PNG files stay small (about 20 kB an image)
    return (cv2.GaussianBlur(img, (3, 3), 0.8) // 6 * 6 + 3).astype(np.uint8)
