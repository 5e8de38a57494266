"""
Where the figures of a synthetic scene stand: an occluded group (:func:`place_group`) or
persons placed independently (:func:`place_free`).

Boxes are [x0, y0, x1, y1] in continuous image coordinates; an image is ``w`` x ``h`` pixels.
"""
import numpy as np

from ..max_iou import pairwise_box_iou
from .figure import sample_figure

__all__ = ["place_group", "place_free"]

_MIN_IOU, _MAX_IOU = 0.52, 0.95  # IoU range aimed at when placing a group


def _rotation(rng):
    """The in-plane rotation in degrees: mostly upright, 12 % of figures tilted 20-90 degrees."""
    if rng.random() < 0.12:
        return float(rng.uniform(20, 90) * (1 if rng.random() < 0.5 else -1))
    return float(rng.normal(0, 4))


def _placed(rng, height_px, center):
    """A sampled figure of standing height ``height_px`` whose box is centered at ``center``."""
    base = sample_figure(rng)
    scale, angle = height_px, _rotation(rng)
    box = base.transformed(scale, angle, (0.0, 0.0)).box()
    offset = np.asarray(center, dtype=np.float64) - 0.5 * (box[:2] + box[2:])
    return base, scale, angle, box, offset


def _clip(boxes, w, h):
    """(N, 4) float64 copy of ``boxes`` clipped to the image."""
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes


def _area(boxes):
    return (boxes[:, 2] - boxes[:, 0]).clip(min=0) * (boxes[:, 3] - boxes[:, 1]).clip(min=0)


def place_group(rng, w, h, n):
    """``n`` figures, each after the first placed for a box IoU in [0.52, 0.95] with an
    earlier one (aiming at a uniform target in [0.52, 0.9]). None when placement fails."""
    h0 = rng.uniform(0.55, 0.9) * h
    height = h0 * rng.uniform(0.9, 1.1)
    base, scale, angle, box, offset = _placed(rng, height, (rng.uniform(0.35, 0.65) * w, rng.uniform(0.4, 0.6) * h))
    figures = [base.transformed(scale, angle, offset)]
    boxes = [box + np.tile(offset, 2)]
    for k in range(1, n):
        for _ in range(12):
            anchor = int(rng.integers(k))
            a = _clip(boxes[anchor], w, h)[0]
            base, scale, angle, box, _ = _placed(rng, h0 * rng.uniform(0.85, 1.15), (0.0, 0.0))
            bw, bh = box[2] - box[0], box[3] - box[1]
            m = 48
            centers = 0.5 * (a[:2] + a[2:]) + np.stack(
                [rng.uniform(-0.6, 0.6, m) * max(a[2] - a[0], bw), rng.uniform(-0.3, 0.3, m) * max(a[3] - a[1], bh)], 1
            )
            cand = np.concatenate([centers - [bw / 2, bh / 2], centers + [bw / 2, bh / 2]], 1)
            clipped = _clip(cand, w, h)
            inside = _area(clipped) >= 0.6 * bw * bh
            iou = pairwise_box_iou(np.concatenate([a[None], clipped]), mode="xyxy")[0, 1:]
            ok = inside & (iou >= _MIN_IOU) & (iou <= _MAX_IOU)
            if ok.any():
                target = rng.uniform(_MIN_IOU, 0.9)
                idx = np.flatnonzero(ok)[np.argmin(np.abs(iou[ok] - target))]
                offset = cand[idx, :2] - box[:2]
                figures.append(base.transformed(scale, angle, offset))
                boxes.append(box + np.tile(offset, 2))
                break
        else:
            return None
    return figures


def place_free(rng, w, h, n, max_box_iou=None):
    """``n`` figures placed independently: they may overlap (below ``max_box_iou`` with every
    other one, clipped boxes, when given) or be cut by the border."""
    figures, boxes = [], []
    for _ in range(n):
        for _ in range(10):
            truncate = rng.random() < 0.15
            center = (rng.uniform(0.0, 1.0) * w, rng.uniform(0.3, 0.95) * h) if truncate else (
                rng.uniform(0.15, 0.85) * w, rng.uniform(0.35, 0.65) * h)  # fmt: skip
            base, scale, angle, box, offset = _placed(rng, rng.uniform(0.35, 0.85) * h, center)
            full = box + np.tile(offset, 2)
            if _area(_clip(full, w, h))[0] < 0.5 * _area(full[None])[0]:
                continue
            if max_box_iou is not None and boxes:
                iou = pairwise_box_iou(_clip(np.stack([full, *boxes]), w, h), mode="xyxy")[0, 1:]
                if (iou >= max_box_iou).any():
                    continue
            figures.append(base.transformed(scale, angle, offset))
            boxes.append(full)
            break
    return figures
