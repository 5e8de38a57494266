"""Figures of the comparison: per-image mask grids and AP by occlusion."""
import cv2
import numpy as np
from detectron2.utils.colormap import colormap
from detectron2.utils.visualizer import Visualizer

__all__ = ["masks_panel", "titled_grid", "plot_ap_by_max_iou", "TITLE_HEIGHT", "PANEL_GAP"]

TITLE_HEIGHT = 22
PANEL_GAP = 4
_PALETTE = colormap(rgb=True, maximum=1)


def masks_panel(image_rgb, masks, metadata=None):
    """
    The image with each mask (H, W) bool of ``masks`` in its own color; (H, W, 3) uint8 RGB.
    """
    visualizer = Visualizer(image_rgb, metadata, scale=1.0)
    masks = [np.asarray(m, dtype=bool) for m in masks]
    if masks:
        colors = [_PALETTE[i % len(_PALETTE)] for i in range(len(masks))]
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
