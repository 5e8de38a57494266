"""
Writing the synthetic dataset: the splits, rendered image by image (in worker processes when
asked), as PNG files and COCO-style annotation files, and the record of the generator version
that made them.

The splits follow the paper's protocol (train on COCOPersons, where heavy overlaps are rare;
test on it and on OCHuman): ``train`` is COCO-like, 4 % occluded scenes and free scenes
without heavy overlaps; ``test`` (the OCHuman analogue) has only occluded scenes (every person
MaxIoU >= 0.5, mean >= 0.6); ``all_levels`` (the COCOPersons-val analogue) and ``val`` have
half of each kind, so persons at every MaxIoU level.

Annotations (COCO style, one file per split, ``annotations/{split}.json``): ``bbox`` is the
box of the person's whole figure, covered parts included, clipped to the image; ``area`` the
visible mask's pixel count; ``segmentation`` the visible mask as compressed RLE; keypoints
are integer pixel indices (COCO's convention; pixel (i, j) holds the keypoint at continuous
(i + 0.5, j + 0.5) after Detectron2's loader adds 0.5) with v = 2 when the pixel is on the
person's visible mask, v = 1 when another person covers it and v = 0 (x = y = 0) outside the
image; ``max_iou`` is computed from the boxes; ``figure`` holds the figure's outfit and build
(:attr:`.figure.Figure.attributes`). Images are PNG under ``images/{split}/{index:06d}.png``.

Generation is deterministic: image ``i`` of a split depends only on (seed, split, i), so the
same seed and counts give byte-identical files, and a larger count extends a smaller one.
"""
import json
import logging
import multiprocessing as mp
import os
import shutil
import time

import cv2
import numpy as np
from tqdm import tqdm

from ..coco_format import dump_json, encode_mask, person_category
from .scenes import render_scene
from .statistics import dataset_statistics, format_statistics

__all__ = [
    "SPLITS",
    "DEFAULT_SEED",
    "DEFAULT_COUNTS",
    "GENERATOR_VERSION",
    "OCCLUDED_SHARE",
    "FREE_MAX_IOU",
    "generate_split",
    "generate_synthetic_dataset",
    "generated_version",
    "ensure_synthetic_dataset",
    "is_synthetic_dataset_complete",
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
