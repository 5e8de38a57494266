#!/usr/bin/env python
"""
Write a grid of augmented training samples with copy-paste (INPUT.COPY_PASTE) as the config's
training mapper makes them: each person's mask in its color, pasted persons outlined in white,
skeletons with visible joints (v = 2) as filled dots and labeled but covered ones (v = 1) as
white rings. Copy-paste is switched on (INPUT.COPY_PASTE.ENABLED) whatever the config says;
the other options are the config's and --opts'.

Example:

    python tools/visualize_copy_paste.py --config-file configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \\
        --num-samples 12 --columns 4 --output output/copy_paste_grid.png --opts INPUT.COPY_PASTE.PROB 1.0
"""
import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

CELL_SIZE = 320  # each sample fits a CELL_SIZE x CELL_SIZE square, aspect kept
TITLE_HEIGHT = 20
GAP = 4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, help="a training config (its DATASETS.TRAIN is sampled)")
    p.add_argument("--output", required=True, help="the PNG to write")
    p.add_argument("--num-samples", type=int, default=12)
    p.add_argument("--columns", type=int, default=4)
    p.add_argument("--seed", type=int, default=0, help="the records drawn and the augmentations")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE pairs merged into the config")
    return p.parse_args(argv)


class CountingCopyPaste:
    """Wraps the mapper's CopyPaste and remembers how many persons the last call pasted."""

    def __init__(self, copy_paste):
        self.copy_paste = copy_paste
        self.last_pasted = 0

    def __call__(self, image, annotations, **kwargs):
        image, annotations = self.copy_paste(image, annotations, **kwargs)
        self.last_pasted = sum("copy_paste_source" in a for a in annotations)
        return image, annotations


def build_mapper(cfg):
    """The config's training mapper with copy-paste, masks and keypoints on (to draw them)."""
    from detectron2.data import detection_utils as utils

    from pose2seg_d2.engine.trainer import train_mapper_class

    mapper = train_mapper_class(cfg)(
        cfg, True, use_instance_mask=True, use_keypoint=True, instance_mask_format="bitmask",
        keypoint_hflip_indices=utils.create_keypoint_hflip_indices(cfg.DATASETS.TRAIN),
    )  # fmt: skip
    mapper.copy_paste = CountingCopyPaste(mapper.copy_paste)
    return mapper


def draw_sample(image_bgr, masks, keypoints, num_pasted):
    """
    Args:
        image_bgr (ndarray): (H, W, 3) uint8.
        masks (ndarray): (N, H, W) bool, the persons' masks; the last ``num_pasted`` are pasted.
        keypoints (ndarray): (N, K, 3) float, continuous coordinates and v.

    Returns:
        ndarray: (H, W, 3) uint8 BGR.
    """
    from detectron2.utils.colormap import colormap

    from pose2seg_d2.pose.keypoints import COCO_PERSON_LIMBS

    palette = colormap(rgb=False, maximum=255).astype(np.uint8)
    out = image_bgr.copy()
    colors = palette[np.arange(len(masks)) % len(palette)]
    for mask, color in zip(masks, colors):
        out[mask] = (0.45 * out[mask] + 0.55 * color).astype(np.uint8)
    for i, (mask, kp, color) in enumerate(zip(masks, keypoints, colors)):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        pasted = i >= len(masks) - num_pasted
        cv2.drawContours(out, contours, -1, (255, 255, 255) if pasted else color.tolist(), 2 if pasted else 1)
        xy = np.floor(kp[:, :2]).astype(int)
        for a, b in COCO_PERSON_LIMBS:
            if kp[a, 2] > 0 and kp[b, 2] > 0:
                cv2.line(out, tuple(xy[a]), tuple(xy[b]), color.tolist(), 1, cv2.LINE_AA)
        for (x, y), v in zip(xy, kp[:, 2]):
            if v == 2:
                cv2.circle(out, (x, y), 3, color.tolist(), -1, cv2.LINE_AA)
                cv2.circle(out, (x, y), 3, (0, 0, 0), 1, cv2.LINE_AA)
            elif v == 1:
                cv2.circle(out, (x, y), 3, (255, 255, 255), 1, cv2.LINE_AA)
                cv2.circle(out, (x, y), 4, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def cell(title, image_bgr):
    """The drawing fitted into a CELL_SIZE square under a title strip."""
    h, w = image_bgr.shape[:2]
    scale = CELL_SIZE / max(h, w)
    resized = cv2.resize(image_bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    out = np.full((CELL_SIZE + TITLE_HEIGHT, CELL_SIZE, 3), 255, np.uint8)
    out[TITLE_HEIGHT : TITLE_HEIGHT + resized.shape[0], : resized.shape[1]] = resized
    cv2.putText(out, title, (3, TITLE_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def grid(cells, columns):
    rows = -(-len(cells) // columns)
    ch, cw = cells[0].shape[:2]
    out = np.full((rows * ch + (rows - 1) * GAP, columns * cw + (columns - 1) * GAP, 3), 255, np.uint8)
    for i, c in enumerate(cells):
        r, k = divmod(i, columns)
        out[r * (ch + GAP) : r * (ch + GAP) + ch, k * (cw + GAP) : k * (cw + GAP) + cw] = c
    return out


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(args.config_file):
        raise SystemExit(f"error: config file not found: {args.config_file}")
    import pose2seg_d2.data  # noqa: F401  (registers the datasets)
    from detectron2.data import DatasetCatalog

    from pose2seg_d2.config import load_config

    cfg = load_config(args.config_file, list(args.opts) + ["INPUT.COPY_PASTE.ENABLED", True])
    if not cfg.DATASETS.TRAIN:
        raise SystemExit(f"error: {args.config_file} has no DATASETS.TRAIN")
    mapper = build_mapper(cfg)
    records = DatasetCatalog.get(cfg.DATASETS.TRAIN[0])
    rng = np.random.RandomState(args.seed)
    np.random.seed(args.seed)  # the augmentations and copy-paste draw from numpy's global state
    cells = []
    for index in rng.choice(len(records), size=min(args.num_samples, len(records)), replace=False):
        mapped = mapper(records[index])
        image = mapped["image"].numpy().transpose(1, 2, 0)
        if cfg.INPUT.FORMAT == "RGB":
            image = image[:, :, ::-1]
        instances = mapped["instances"]
        masks = instances.gt_masks.tensor.numpy().astype(bool)
        keypoints = instances.gt_keypoints.tensor.numpy()
        pasted = min(mapper.copy_paste.last_pasted, len(masks))
        title = f"{os.path.basename(records[index]['file_name'])}: {len(masks)} persons, {pasted} pasted"
        cells.append(cell(title, draw_sample(np.ascontiguousarray(image), masks, keypoints, pasted)))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    cv2.imwrite(args.output, grid(cells, max(1, min(args.columns, len(cells)))))
    print(f"wrote {args.output} ({len(cells)} samples of {cfg.DATASETS.TRAIN[0]})")


if __name__ == "__main__":
    main()
