"""Choosing the keypoints-only reference's widths on a validation split (best mask AP there)."""
import contextlib
import io
import logging

import numpy as np
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..modeling.keypoints_only import figure_distances

__all__ = ["fit_keypoints_only_widths", "WIDTH_GRID"]

logger = logging.getLogger(__name__)

_QUANTUM = 100  # distances are compared in hundredths of a torso length

# candidate values (units of the person's torso length); searched one at a time, twice over
WIDTH_GRID = {
    "ARM_WIDTH": (0.06, 0.09, 0.12, 0.15, 0.18, 0.22),
    "LEG_WIDTH": (0.1, 0.14, 0.18, 0.22, 0.26, 0.3),
    "HEAD_RADIUS": (0.16, 0.2, 0.24, 0.28, 0.32, 0.36),
}


def _coco_gt(dataset):
    json_file = MetadataCatalog.get(dataset).json_file
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(json_file)


def _mask_ap(coco_gt, image_ids, distances, limits):
    """COCO mask AP (%) of the figures ``distances <= limits`` (every mask scores 1)."""
    detections = []
    for image_id, d in zip(image_ids, distances):
        if len(d) == 0:
            continue
        masks = (d <= limits[:, None, None]).any(dim=1)
        for rle in mask_util.encode(np.asfortranarray(masks.permute(1, 2, 0).numpy().astype(np.uint8))):
            rle["counts"] = rle["counts"].decode("ascii")
            detections.append({"image_id": image_id, "category_id": 1, "segmentation": rle, "score": 1.0})
    if not detections:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(detections)
        evaluator = COCOeval(coco_gt, coco_dt, "segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return 100.0 * float(evaluator.stats[0])


def fit_keypoints_only_widths(dataset, start=None, grid=WIDTH_GRID, rounds=2):
    """
    Coordinate search of MODEL.KEYPOINTS_ONLY's widths for the best mask AP on ``dataset``
    (ground-truth keypoints, each image at its own size): each width in turn takes the grid
    value that scores best with the others fixed, ``rounds`` times over.

    Args:
        dataset (str): a registered dataset with keypoints and masks (its ``json_file`` is the
            COCO ground truth).
        start (dict or None): initial widths (keys of ``grid``); the middle of each grid if None.

    Returns:
        dict: the chosen widths (``ARM_WIDTH``, ``LEG_WIDTH``, ``HEAD_RADIUS``), ``AP`` on
        ``dataset`` with them, and ``evaluations`` (how many were tried).
    """
    coco_gt = _coco_gt(dataset)
    image_ids, distances = [], []
    for record in DatasetCatalog.get(dataset):
        keypoints = [a["keypoints"] for a in record.get("annotations", []) if not a.get("iscrowd", 0)]
        keypoints = torch.tensor(keypoints, dtype=torch.float32).reshape(-1, 17, 3)
        image_ids.append(record["image_id"])
        d = figure_distances(keypoints, (record["height"], record["width"]))
        # in hundredths of a torso length, as bytes: thresholds on 3 x H x W maps per person are
        # then cheap enough to try many widths (the grid's values are whole hundredths)
        distances.append((d * _QUANTUM).round().clamp(max=255).to(torch.uint8))
    names = list(grid)
    widths = dict(start or {k: v[len(v) // 2] for k, v in grid.items()})
    cache = {}

    def score(w):
        key = tuple(round(w[k], 6) for k in names)
        if key not in cache:
            limits = torch.tensor([round(w[k] * _QUANTUM) for k in names], dtype=torch.uint8)
            cache[key] = _mask_ap(coco_gt, image_ids, distances, limits)
        return cache[key]

    best = score(widths)
    for _ in range(rounds):
        for name in names:
            for value in grid[name]:
                candidate = {**widths, name: value}
                ap = score(candidate)
                if ap > best:
                    best, widths = ap, candidate
    logger.info("keypoints-only widths chosen on %s: %s (mask AP %.1f, %d evaluations)", dataset, widths, best, len(cache))
    return {**widths, "AP": best, "evaluations": len(cache)}
