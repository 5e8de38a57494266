"""
The synthetic occluded-human benchmark: the embedded default dataset (no download).

Each image shows articulated figures (:mod:`.figures`) with per-person clothing colors and
textures over a cluttered, textured background. Two kinds of scenes:

* *occluded*: a group of 2-4 persons of similar height placed so that every person's box has
  IoU >= 0.5 with another person's (OCHuman's criterion of heavy occlusion); each added
  person wears, with probability 0.35, nearly the same colors as an earlier one, so that
  color alone cannot separate them (0.2 in easy scenes);
* *free*: 1-3 persons placed anywhere (they may still overlap or be cut by the border); in
  the train split no two of them overlap heavily (box IoU < 0.5).

The splits follow the paper's protocol (train on COCOPersons, where heavy overlaps are rare;
test on it and on OCHuman): ``train`` is COCO-like, 4 % occluded scenes and free scenes
without heavy overlaps; ``test`` (the OCHuman analogue) has only occluded scenes (every person
MaxIoU >= 0.5, mean >= 0.6); ``all_levels`` (the COCOPersons-val analogue) and ``val`` have
half of each kind, so persons at every MaxIoU level. Persons are drawn far to near in a random
depth order, so the masks are the *visible* parts and never overlap within an image.

Annotations (COCO style, one file per split, ``annotations/{split}.json``): ``bbox`` is the
box of the person's whole figure, covered parts included, clipped to the image; ``area`` the
visible mask's pixel count; ``segmentation`` the visible mask as compressed RLE; keypoints
are integer pixel indices (COCO's convention; pixel (i, j) holds the keypoint at continuous
(i + 0.5, j + 0.5) after Detectron2's loader adds 0.5) with v = 2 when the pixel is on the
person's visible mask, v = 1 when another person covers it and v = 0 (x = y = 0) outside the
image; ``max_iou`` is computed from the boxes; ``figure`` holds the figure's outfit and build
(:attr:`Figure.attributes`). Images are PNG under ``images/{split}/{index:06d}.png``.

Generation is deterministic: image ``i`` of a split depends only on (seed, split, i), so the
same seed and counts give byte-identical files, and a larger count extends a smaller one.
"""
import json
import logging
import math
import multiprocessing as mp
import os
import shutil
import time

import cv2
import numpy as np
from tqdm import tqdm

from .coco_format import dump_json, encode_mask, person_category
from .figures import NUM_PART_LABELS, PART_LABELS, draw_figure, sample_figure
from .max_iou import max_iou, pairwise_box_iou

__all__ = [
    "SPLITS",
    "DEFAULT_SEED",
    "DEFAULT_COUNTS",
    "GENERATOR_VERSION",
    "render_scene",
    "generate_split",
    "generate_synthetic_dataset",
    "ensure_synthetic_dataset",
    "is_synthetic_dataset_complete",
    "dataset_statistics",
    "format_statistics",
]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test", "all_levels")
DEFAULT_SEED = 0
DEFAULT_COUNTS = {"train": 2000, "val": 200, "test": 200, "all_levels": 200}
# 2: clothing, hair, bags and builds that a skeleton does not determine; COCO-like train split;
# the all_levels split
GENERATOR_VERSION = 2
_SPLIT_INDEX = {"train": 0, "val": 1, "test": 2, "all_levels": 3}
OCCLUDED_SHARE = {"train": 0.04, "val": 0.5, "test": 1.0, "all_levels": 0.5}
# free scenes of these splits keep every pair of persons below this box IoU (None: no limit)
FREE_MAX_IOU = {"train": 0.5, "val": None, "test": None, "all_levels": None}
# (width, height): longer side 256
IMAGE_SIZES = ((256, 192), (256, 224), (256, 256), (224, 256), (192, 256))

_MIN_IOU, _MAX_IOU = 0.52, 0.95  # IoU range aimed at when placing a group
_MIN_VISIBLE_FRACTION = 0.2
_MIN_VISIBLE_PIXELS = 60
_MIN_LABELED_KEYPOINTS = 5

_SKIN = np.array([[189, 224, 255], [160, 200, 240], [120, 170, 220], [90, 135, 190], [60, 95, 140], [45, 65, 100]])
_HAIR = np.array([[20, 20, 20], [30, 45, 70], [40, 80, 130], [120, 170, 210], [150, 150, 150], [25, 25, 60]])


# ----------------------------------------------------------------------------- appearance
def _hsv_color(rng, s_range=(40, 255), v_range=(40, 255)):
    hsv = np.array([[[rng.integers(0, 180), rng.integers(*s_range), rng.integers(*v_range)]]], dtype=np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.int64)


def _jitter(rng, color, amount):
    return np.clip(color + rng.integers(-amount, amount + 1, 3), 0, 255)


def _palette(rng, like=None):
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


def _texture(rng, h, w, x0, y0):
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


def _background(rng, h, w):
    """A cluttered, textured background: gradient, low-frequency noise and random shapes,
    some of them in skin or clothing colors."""
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
        if rng.random() < 0.3:
            color = _jitter(rng, _SKIN[rng.integers(len(_SKIN))], 15) if rng.random() < 0.5 else _hsv_color(rng)
        else:
            color = _hsv_color(rng, (0, 255), (20, 255))
        color = tuple(int(c) for c in color)
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
    # posterized (steps of 6) so that the PNG files stay small (about 20 kB an image)
    return (cv2.GaussianBlur(img, (3, 3), 0.8) // 6 * 6 + 3).astype(np.uint8)


# ----------------------------------------------------------------------------- placement
def _rotation(rng):
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
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes


def _area(boxes):
    return (boxes[:, 2] - boxes[:, 0]).clip(min=0) * (boxes[:, 3] - boxes[:, 1]).clip(min=0)


def _place_group(rng, w, h, n):
    """``n`` figures, each after the first placed for a box IoU in [0.52, 0.95] with an
    earlier one (aiming at a uniform target in [0.52, 0.9]). None when placement fails."""
    h0 = rng.uniform(0.55, 0.9) * h
    base, scale, angle, box, offset = _placed(rng, h0 * rng.uniform(0.9, 1.1), (rng.uniform(0.35, 0.65) * w, rng.uniform(0.4, 0.6) * h))
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


def _place_free(rng, w, h, n, max_box_iou=None):
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


# ----------------------------------------------------------------------------- scenes
def _compose(rng, w, h, figures, palettes):
    """Draw the figures far to near over a background; returns the image, each figure's
    label map and the owner map (index of the visible person per pixel, -1 background)."""
    image = _background(rng, h, w)
    owner = np.full((h, w), -1, dtype=np.int16)
    label_maps = []
    for i, fig in enumerate(figures):
        lm = np.zeros((h, w), dtype=np.uint8)
        draw_figure(lm, fig)
        label_maps.append(lm)
    order = rng.permutation(len(figures))  # order[0] is the farthest
    for i in order:
        lm = label_maps[i]
        ys, xs = np.nonzero(lm)
        if len(ys) == 0:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        crop = lm[y0:y1, x0:x1]
        colors = palettes[i][crop].astype(np.float32)
        factor = np.ones(crop.shape, dtype=np.float32)
        for label in (PART_LABELS["shirt"], PART_LABELS["pants"], PART_LABELS["skirt"], PART_LABELS["coat"]):
            tex = _texture(rng, y1 - y0, x1 - x0, x0, y0)
            factor = np.where(crop == label, tex, factor)
        colors = np.clip(colors * factor[..., None], 0, 255).astype(np.uint8)
        on = crop > 0
        image[y0:y1, x0:x1][on] = colors[on]
        owner[y0:y1, x0:x1][on] = i
    return image, label_maps, owner


def _annotate(figures, label_maps, owner, w, h):
    persons = []
    for i, fig in enumerate(figures):
        silhouette = label_maps[i] > 0
        visible = owner == i
        ys, xs = np.nonzero(silhouette)
        if len(ys) == 0:
            return None
        bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        pix = np.floor(fig.keypoints).astype(np.int64)
        keypoints = np.zeros((17, 3), dtype=np.int64)
        for k, (x, y) in enumerate(pix):
            if 0 <= x < w and 0 <= y < h:
                assert silhouette[y, x], "a keypoint off its figure"
                keypoints[k] = (x, y, 2 if visible[y, x] else 1)
        persons.append(
            {
                "keypoints": keypoints,
                "mask": visible,
                "bbox": bbox,
                "area": int(visible.sum()),
                "silhouette_area": int(silhouette.sum()),
                "figure": dict(fig.attributes),
            }
        )
    values = max_iou([p["bbox"] for p in persons], mode="xywh")
    for p, v in zip(persons, values):
        p["max_iou"] = float(v)
    return persons


def _acceptable(persons, occluded):
    for p in persons:
        if p["area"] < max(_MIN_VISIBLE_PIXELS, _MIN_VISIBLE_FRACTION * p["silhouette_area"]):
            return False
        v = p["keypoints"][:, 2]
        if (v > 0).sum() < _MIN_LABELED_KEYPOINTS or (v == 2).sum() < 1:
            return False
        if occluded and p["max_iou"] < 0.5:
            return False
    return True


def render_scene(rng, occluded, image_size=None, max_attempts=200, free_max_iou=None):
    """
    Render one image.

    Args:
        rng (numpy.random.Generator)
        occluded (bool): an occluded group (every person MaxIoU >= 0.5) or an easy scene.
        image_size (tuple[int, int] or None): (width, height); one of :data:`IMAGE_SIZES`
            when None.
        free_max_iou (float or None): in an easy scene, every pair of persons' (clipped)
            boxes stays below this IoU (whole-figure boxes; the annotated boxes are the figures'
            pixels, so their IoU can differ slightly).

    Returns:
        tuple: ``image`` (H, W, 3) uint8 BGR and ``persons``, a list of dicts with
        ``keypoints`` (17, 3) int64 (pixel indices and v), ``mask`` (H, W) bool (visible
        part), ``bbox`` [x, y, w, h] ints, ``area`` (visible pixels), ``silhouette_area``
        (the whole figure inside the image), ``max_iou`` and ``figure`` (the figure's
        attributes).
    """
    for _ in range(max_attempts):
        w, h = image_size if image_size is not None else IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
        if occluded:
            n = int(rng.choice([2, 3, 4], p=[0.5, 0.33, 0.17]))
            figures = _place_group(rng, w, h, n)
            if figures is None:
                continue
        else:
            figures = _place_free(rng, w, h, int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25])), free_max_iou)
            if not figures:
                continue
        palettes = []
        for k in range(len(figures)):
            like = None
            if k > 0 and rng.random() < (0.35 if occluded else 0.2):
                like = palettes[int(rng.integers(k))]  # similar clothing
            palettes.append(_palette(rng, like))
        image, label_maps, owner = _compose(rng, w, h, figures, palettes)
        persons = _annotate(figures, label_maps, owner, w, h)
        if persons is not None and _acceptable(persons, occluded):
            return image, persons
    raise RuntimeError(f"could not render an acceptable scene in {max_attempts} attempts")


# ----------------------------------------------------------------------------- files
def _render_indexed(args):
    seed, split, index, image_dir = args
    rng = np.random.default_rng([seed, _SPLIT_INDEX[split], index])
    occluded = bool(rng.random() < OCCLUDED_SHARE[split])
    image, persons = render_scene(rng, occluded, free_max_iou=FREE_MAX_IOU[split])
    file_name = f"{index:06d}.png"
    ok = cv2.imwrite(os.path.join(image_dir, file_name), image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise OSError(f"could not write {os.path.join(image_dir, file_name)}")
    annos = [
        {
            "keypoints": p["keypoints"].reshape(-1).tolist(),
            "num_keypoints": int((p["keypoints"][:, 2] > 0).sum()),
            "segmentation": encode_mask(p["mask"]),
            "area": p["area"],
            "bbox": p["bbox"],
            "max_iou": round(p["max_iou"], 6),
            "figure": p["figure"],
        }
        for p in persons
    ]
    return file_name, image.shape[0], image.shape[1], annos


def _map_in_workers(fn, jobs, num_workers, bar):
    """``[fn(job) for job in jobs]`` in ``num_workers`` processes, in order.

    Forked workers (where available; no re-import of the caller's main module) inherit
    OpenCV's state; OpenCV's thread pool is not fork-safe (a worker deadlocks if the parent's
    pool is running), so it is shut down (one thread) while forking and restored afterwards.
    """
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with mp.get_context(method).Pool(num_workers) as pool:
            return list(tqdm(pool.imap(fn, jobs, chunksize=8), **bar))
    finally:
        cv2.setNumThreads(threads)


def generate_split(output_dir, split, num_images, seed=DEFAULT_SEED, progress=True, num_workers=0):
    """
    Render one split into ``output_dir/images/{split}/`` and return its COCO dict (not
    written; see :func:`generate_synthetic_dataset`).

    Args:
        num_workers (int): worker processes (0: render in this process). The output does
            not depend on it.
    """
    if split not in _SPLIT_INDEX:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    image_dir = os.path.join(output_dir, "images", split)
    os.makedirs(image_dir, exist_ok=True)
    jobs = [(seed, split, i, image_dir) for i in range(num_images)]
    bar = dict(total=num_images, desc=f"synthetic_occluded {split}", unit="img", disable=not progress)
    if num_workers and num_workers > 1 and num_images > 8 and not mp.current_process().daemon:
        results = _map_in_workers(_render_indexed, jobs, num_workers, bar)
    else:
        results = [_render_indexed(job) for job in tqdm(jobs, **bar)]
    images, annotations = [], []
    for image_id, (file_name, h, w, annos) in enumerate(results, start=1):
        images.append({"id": image_id, "file_name": file_name, "height": h, "width": w})
        for anno in annos:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0, **anno}
            )
    return {
        "info": {
            "description": "Pose2Seg synthetic occluded humans",
            "version": GENERATOR_VERSION,
            "split": split,
            "seed": seed,
        },
        "images": images,
        "annotations": annotations,
        "categories": [person_category()],
    }


def dataset_statistics(coco):
    """
    Args:
        coco (dict): a COCO-style person dataset with ``max_iou`` on every annotation.

    Returns:
        dict: ``images``, ``persons``, ``persons_per_image``, ``mean_max_iou``,
        ``share_max_iou_ge_0.5`` (OCHuman's heavy occlusion), ``persons_by_max_iou`` (counts
        in the evaluator's buckets [0, 0.5), [0.5, 0.75), [0.75, 1]), ``share_keypoint_covered``
        (persons with a keypoint covered by another person, v = 1) and, where annotations
        carry ``figure``, ``share_outfit`` (share of persons per outfit) and
        ``share_bag_or_hat``.
    """
    annos = coco["annotations"]
    ious = np.array([a["max_iou"] for a in annos], dtype=np.float64)
    covered = [any(v == 1 for v in a["keypoints"][2::3]) for a in annos]
    n = max(len(annos), 1)
    stats = {
        "images": len(coco["images"]),
        "persons": len(annos),
        "persons_per_image": len(annos) / max(len(coco["images"]), 1),
        "mean_max_iou": float(ious.mean()) if len(ious) else 0.0,
        "share_max_iou_ge_0.5": float((ious >= 0.5).sum() / n),
        "persons_by_max_iou": {
            "0.00-0.50": int((ious < 0.5).sum()),
            "0.50-0.75": int(((ious >= 0.5) & (ious < 0.75)).sum()),
            "0.75-1.00": int((ious >= 0.75).sum()),
        },
        "share_keypoint_covered": float(sum(covered) / n),
    }
    figures = [a["figure"] for a in annos if "figure" in a]
    if figures:
        outfits = [f["outfit"] for f in figures]
        stats["share_outfit"] = {o: outfits.count(o) / len(figures) for o in sorted(set(outfits))}
        stats["share_bag_or_hat"] = sum(f["bag"] != "none" or f["hat"] for f in figures) / len(figures)
    return stats


def format_statistics(split, stats):
    return (
        f"synthetic_occluded {split}: {stats['images']} images, {stats['persons']} persons "
        f"({stats['persons_per_image']:.2f}/image), mean MaxIoU {stats['mean_max_iou']:.3f}, "
        f"occluded (MaxIoU >= 0.5) {100 * stats['share_max_iou_ge_0.5']:.1f}%, persons by MaxIoU "
        + " / ".join(f"{k}: {v}" for k, v in stats["persons_by_max_iou"].items())
        + f", with a covered keypoint {100 * stats['share_keypoint_covered']:.1f}%"
    )


def generate_synthetic_dataset(
    output_dir,
    seed=DEFAULT_SEED,
    num_train=DEFAULT_COUNTS["train"],
    num_val=DEFAULT_COUNTS["val"],
    num_test=DEFAULT_COUNTS["test"],
    num_all_levels=DEFAULT_COUNTS["all_levels"],
    progress=True,
    num_workers=None,
    verbose=True,
):
    """
    Generate the splits (:data:`SPLITS`) into ``output_dir``: ``images/{split}/*.png`` and
    ``annotations/{split}.json``, plus ``generation.json`` (parameters and statistics).

    Args:
        num_workers (int or None): worker processes; None uses up to 2 of the CPUs.
        verbose (bool): print per-split statistics.

    Returns:
        dict[str, dict]: split -> :func:`dataset_statistics`.
    """
    if num_workers is None:
        num_workers = min(2, os.cpu_count() or 1)
    counts = {"train": num_train, "val": num_val, "test": num_test, "all_levels": num_all_levels}
    all_stats = {}
    start = time.perf_counter()
    for split in SPLITS:
        coco = generate_split(output_dir, split, counts[split], seed, progress, num_workers)
        dump_json(coco, os.path.join(output_dir, "annotations", f"{split}.json"))
        all_stats[split] = dataset_statistics(coco)
        if verbose:
            print(format_statistics(split, all_stats[split]), flush=True)
    elapsed = time.perf_counter() - start
    logger.info("generated the synthetic dataset in %s in %.1f s", output_dir, elapsed)
    with open(os.path.join(output_dir, "generation.json"), "w") as f:
        json.dump({"version": GENERATOR_VERSION, "seed": seed, "counts": counts, "statistics": all_stats}, f, indent=1)
    return all_stats


def generated_version(root):
    """The generator version recorded in ``root/generation.json`` (None without one)."""
    try:
        with open(os.path.join(root, "generation.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def is_synthetic_dataset_complete(root):
    """Whether ``root`` holds every split's annotation file and image folder, made by this
    generator version."""
    return generated_version(root) == GENERATOR_VERSION and all(
        os.path.isfile(os.path.join(root, "annotations", f"{s}.json")) and os.path.isdir(os.path.join(root, "images", s))
        for s in SPLITS
    )


def ensure_synthetic_dataset(root, seed=DEFAULT_SEED, **kwargs):
    """
    Generate the synthetic dataset into ``root`` (e.g. ``$DETECTRON2_DATASETS/
    synthetic_occluded``) unless it is already there; keyword arguments go to
    :func:`generate_synthetic_dataset`.

    A missing ``root`` is filled through a temporary sibling folder renamed at the end, so
    concurrent callers never see a half-written dataset. A dataset an older generator version
    made (its ``generation.json`` says so) is removed and generated anew.

    Returns:
        str: ``root``.
    """
    if is_synthetic_dataset_complete(root):
        return root
    old = generated_version(root)
    if isinstance(old, int) and old < GENERATOR_VERSION:
        logger.warning(
            "The synthetic dataset in %s was made by generator version %d; this is version %d: "
            "removing it and generating it anew",
            root, old, GENERATOR_VERSION,
        )  # fmt: skip
        shutil.rmtree(root)
    logger.warning("Synthetic dataset not found in %s: generating it (seed %d)", root, seed)
    if os.path.exists(root):
        generate_synthetic_dataset(root, seed=seed, **kwargs)
        return root
    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(os.path.abspath(root))}.tmp-{os.getpid()}")
    try:
        generate_synthetic_dataset(tmp, seed=seed, **kwargs)
        try:
            os.rename(tmp, root)
        except OSError:
            if not is_synthetic_dataset_complete(root):
                raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return root
