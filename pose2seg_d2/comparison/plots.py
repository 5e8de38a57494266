"""Figures of the comparison: per-image mask grids and AP by occlusion."""
import os

import cv2
import numpy as np
import torch
from detectron2.utils.visualizer import Visualizer

from ..data.coco_format import decode_segmentation
from ..visualization import CONFIDENCE_THRESHOLD, greedy_match, mask_iou, palette_colors

__all__ = [
    "FIGURE_MATCH_IOU",
    "FIGURE_SCORE_THRESHOLD",
    "PANEL_GAP",
    "TITLE_HEIGHT",
    "ground_truth_matches",
    "masks_panel",
    "plot_ap_by_max_iou",
    "titled_grid",
    "write_figures",
]

TITLE_HEIGHT = 22
PANEL_GAP = 4
# the grids draw a run's masks that score at least this (tools/compare.py --figure-score-threshold),
# the threshold demo.py draws persons at
FIGURE_SCORE_THRESHOLD = CONFIDENCE_THRESHOLD
# a run's mask takes the color of the ground-truth person it overlaps by at least this IoU (one
# to one, the highest IoU first); the others are drawn as false positives, in gray: the IoU at
# which COCO's AP50 counts a mask as found
FIGURE_MATCH_IOU = 0.5


def ground_truth_matches(masks, gt_masks, min_iou=FIGURE_MATCH_IOU):
    """
    Args:
        masks (Tensor): (N, H, W) bool, a run's masks.
        gt_masks (Tensor): (M, H, W) bool, the image's ground-truth persons.

    Returns:
        Tensor: (N,) int64, the ground-truth person each mask matches (mask IoU at least
        ``min_iou``, one to one, the highest IoU first), -1 for none.
    """
    return greedy_match(mask_iou(masks, gt_masks), min_iou)


def masks_panel(image_rgb, masks, metadata=None, color_indices=None):
    """
    The image with each mask (H, W) bool of ``masks`` in its color: palette color
    ``color_indices[i]`` (-1: the false positives' gray), by default the i-th; (H, W, 3) uint8 RGB.
    """
    visualizer = Visualizer(image_rgb, metadata, scale=1.0)
    masks = [np.asarray(m, dtype=bool) for m in masks]
    if masks:
        colors = palette_colors(range(len(masks)) if color_indices is None else color_indices)
        visualizer.overlay_instances(masks=masks, assigned_colors=colors, alpha=0.55)
    panel = visualizer.output.get_image()
    if panel.shape[:2] != image_rgb.shape[:2]:
        panel = cv2.resize(panel, (image_rgb.shape[1], image_rgb.shape[0]))
    return panel


def titled_grid(panels):
    """
    Args:
        panels (list[tuple[str, ndarray]]): (title, (H, W, 3) uint8 RGB), all of one size.

    Returns:
        ndarray: (H + TITLE_HEIGHT, n * W + (n - 1) * PANEL_GAP, 3) uint8 RGB, a title strip
        above each panel.
    """
    h, w = panels[0][1].shape[:2]
    n = len(panels)
    grid = np.full((h + TITLE_HEIGHT, n * w + (n - 1) * PANEL_GAP, 3), 255, np.uint8)
    for i, (title, panel) in enumerate(panels):
        if panel.shape[:2] != (h, w):
            raise ValueError(f"panel {title!r} is {panel.shape[:2]}, expected {(h, w)}")
        x = i * (w + PANEL_GAP)
        grid[TITLE_HEIGHT:, x : x + w] = panel
        cv2.putText(grid, title, (x + 3, TITLE_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return grid


def plot_ap_by_max_iou(rows, path, title="Mask AP by occlusion"):
    """
    Args:
        rows (list[dict]): results rows with "label" and "AP_by_max_iou" ({bucket: AP or None}).
        path (str): PNG to write, 640 x 400 pixels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    buckets = list(rows[0]["AP_by_max_iou"]) if rows else []
    for row in rows:
        values = [np.nan if row["AP_by_max_iou"][b] is None else row["AP_by_max_iou"][b] for b in buckets]
        ax.plot(range(len(buckets)), values, marker="o", label=row["label"])
    ax.set_xticks(range(len(buckets)))
    ax.set_xticklabels(buckets)  # every bucket, also those without persons (no point)
    ax.set_xlabel("MaxIoU of the person (occlusion)")
    ax.set_ylabel("mask AP (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_figures(output_dir, dataset, runs, indices, score_threshold=FIGURE_SCORE_THRESHOLD):
    """
    One grid PNG per image of ``dataset`` (input | ground truth | one panel per run of that
    dataset, its masks scoring >= ``score_threshold``) and its AP-by-MaxIoU plot; the file names
    carry the dataset's name. Ground-truth person i has palette color i; a run's mask has the
    color of the ground-truth person it matches (:func:`ground_truth_matches`), gray if none.

    Args:
        runs (list[ModelRun]): evaluated runs; those of ``dataset`` hold their predictions on
            ``indices``, in that order.
        indices (list[int]): images of the figures (indices into the dataset's records).

    Returns:
        (list of the grids' paths, the plot's path)
    """
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.detection_utils import read_image

    runs = [r for r in runs if r.dataset == dataset]
    metadata = MetadataCatalog.get(dataset)
    records = DatasetCatalog.get(dataset)
    paths = []
    for k, index in enumerate(indices):
        record = records[index]
        image = read_image(record["file_name"], format="RGB")
        h, w = image.shape[:2]
        gt_masks = [decode_segmentation(a["segmentation"], h, w).astype(bool) for a in record.get("annotations", [])]
        panels = [("input", image), ("ground truth", masks_panel(image, gt_masks, metadata))]
        gt = torch.from_numpy(np.stack(gt_masks)) if gt_masks else torch.zeros(0, h, w, dtype=torch.bool)
        for run in runs:
            instances = run.predictions[k]
            masks = instances.pred_masks[instances.scores >= score_threshold].to("cpu", torch.bool)
            matches = ground_truth_matches(masks, gt)
            panels.append((run.label, masks_panel(image, list(masks.numpy()), metadata, matches.tolist())))
        path = os.path.join(output_dir, f"grid_{dataset}_{index:04d}.png")
        cv2.imwrite(path, cv2.cvtColor(titled_grid(panels), cv2.COLOR_RGB2BGR))
        paths.append(path)
    plot_path = os.path.join(output_dir, f"ap_by_max_iou_{dataset}.png")
    plot_ap_by_max_iou([r.row() for r in runs], plot_path, title=f"Mask AP by occlusion on {dataset}")
    return paths, plot_path
