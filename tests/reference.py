"""
Slow, per-person NumPy references written from docs/method.md §2 (one person and one template
at a time, float64; limb boxes bounded as the release bounds them). Tests compare the batched
torch ops with them; benchmarks/bench_ops.py times them as the straightforward path.
"""
import math

import numpy as np
import torch

from pose2seg_d2.layers import affine_align
from pose2seg_d2.pose.keypoints import COCO_PERSON_LIMBS

CUTOFF = 4.6025


def ref_affine_align_one(feature, matrix, out_size, dtype=np.float64):
    """feature (C, H, W); matrix (3, 3) feature pixels -> window pixels; returns (C, h, w)."""
    feature = np.asarray(feature, dtype=dtype)
    c, height, width = feature.shape
    h, w = out_size
    inv = np.linalg.inv(np.asarray(matrix, dtype=np.float64))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0, y0 = np.floor(sx), np.floor(sy)
    out = np.zeros((c, h, w), dtype=dtype)
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - np.abs(sx - xi)) * (1 - np.abs(sy - yi))
            inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
            xc = np.clip(xi, 0, width - 1).astype(np.int64)
            yc = np.clip(yi, 0, height - 1).astype(np.int64)
            out += feature[:, yc, xc] * (weight * inside).astype(dtype)
    return out


def ref_similarity(src, dst):
    """Least squares x' = a x - b y + tx, y' = b x + a y + ty via np.linalg.lstsq; (3, 3)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, -y, 1, 0])
        rhs.append(u)
        rows.append([y, x, 0, 1])
        rhs.append(v)
    (a, b, tx, ty), *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty], [0, 0, 1.0]])


def ref_fit_one(kpt, templates, src_size, dst_size, hard=True):
    """
    One person against every template, as docs/method.md §2.3 words it. templates (T, 17, 3) with the
    threshold already applied. Returns (matrix (3, 3), score, template_index) with the release
    fallback (index -1) when no template is accepted.
    """
    (src_h, src_w), (dst_h, dst_w) = src_size, dst_size
    s = min(dst_w / src_w, dst_h / src_h)
    fallback = np.array([[s, 0, (dst_w - src_w * s) / 2], [0, s, (dst_h - src_h * s) / 2], [0, 0, 1.0]])
    best = (fallback, 0.0, -1)
    person = kpt[:, 2] > 0
    for t, template in enumerate(templates):
        present = template[:, 2] > 0
        inter, union = person & present, person | present
        if inter.sum() < 3:
            continue
        if hard and np.any(person & ~present):
            continue
        m = ref_similarity(kpt[inter, :2], template[inter, :2])
        mapped = kpt[inter, :2] @ m[:2, :2].T + m[:2, 2]
        d2 = ((mapped - template[inter, :2]) ** 2).sum(1)
        score = np.mean(np.exp(-d2 / 2)) * inter.sum() / union.sum()
        window = np.diag([dst_w, dst_h, 1.0]) @ m
        scale = math.hypot(window[0, 0], window[0, 1])
        if score > best[1] and scale > s:
            best = (window, score, t)
    return best


def ref_skeleton_one(kpt, size, sigma=3.0, width=1.0, signed_occluded=True):
    """One person's 55 channels, keypoint by keypoint and limb by limb."""
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.zeros((55, h, w))
    for k in range(17):
        x, y, v = kpt[k]
        if v <= 0:
            continue
        e = ((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)
        g = np.where(e < CUTOFF, np.exp(-e), 0.0)
        out[k] = -g if (signed_occluded and v == 1) else g
    for limb, (i, j) in enumerate(COCO_PERSON_LIMBS):
        if kpt[i, 2] <= 0 or kpt[j, 2] <= 0:
            continue
        geometry = _limb_geometry(kpt[i, :2], kpt[j, :2], xs, ys)
        if geometry is None:
            continue
        (ux, uy), dist, (x_lo, x_hi, y_lo, y_hi) = geometry
        # the release's box: round(lo - width) <= x < round(hi + width), Python's round (half to even)
        box = (xs >= round(x_lo - width)) & (xs < round(x_hi + width))
        box &= (ys >= round(y_lo - width)) & (ys < round(y_hi + width))
        on = (dist < width) & box
        out[17 + 2 * limb][on] = ux
        out[17 + 2 * limb + 1][on] = uy
    return out


def ref_limb_boundary_distance(kpt, size, width=1.0):
    """(19, h, w): how far each pixel is from flipping in or out of each limb's field."""
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.full((19, h, w), np.inf)
    for limb, (i, j) in enumerate(COCO_PERSON_LIMBS):
        geometry = _limb_geometry(kpt[i, :2], kpt[j, :2], xs, ys)
        if geometry is None:
            continue
        _, dist, (x_lo, x_hi, y_lo, y_hi) = geometry
        # a box bound round(e) moves past pixel x when e crosses x + 0.5
        out[limb] = np.minimum.reduce(
            [
                np.abs(dist - width),
                np.abs(xs + 0.5 - (x_lo - width)), np.abs(xs + 0.5 - (x_hi + width)),
                np.abs(ys + 0.5 - (y_lo - width)), np.abs(ys + 0.5 - (y_hi + width)),
            ]
        )  # fmt: skip
    return out


def _limb_geometry(a, b, xs, ys):
    """Unit direction a -> b, each pixel's distance to the line through a and b, and the ends'
    box (x_lo, x_hi, y_lo, y_hi); None when a == b."""
    (xa, ya), (xb, yb) = a, b
    length = math.hypot(xb - xa, yb - ya)
    if length == 0:
        return None
    ux, uy = (xb - xa) / length, (yb - ya) / length
    dist = np.abs((xs - xa) * uy - (ys - ya) * ux)
    return (ux, uy), dist, (min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb))


def ref_whole_image_warp(windows, window_from_image, image_size):
    """Warping back the straightforward way: every (N, h, w) window sampled over the whole image."""
    image_from_window = torch.linalg.inv(window_from_image.to(torch.float64))
    return affine_align(windows[:, None], image_from_window, torch.arange(len(windows)), image_size)[:, 0]
