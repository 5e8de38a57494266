"""
Persons drawn on an image: each mask filled in its color, the skeleton in Detectron2's style
(limb colors by side, keypoints red), an optional label with the score; and the one confidence threshold below
which ``demo.py`` and the comparison's figures draw no person.
"""
import math

import cv2
import numpy as np

__all__ = ["CONFIDENCE_THRESHOLD", "MASK_ALPHA", "draw_persons", "score_labels"]

# persons scoring below this are not drawn (demo.py --confidence-threshold, the comparison's
# figures): Detectron2's demo default
CONFIDENCE_THRESHOLD = 0.5
# how opaque a mask's color is over the image (Detectron2's Visualizer draws predictions at 0.5)
MASK_ALPHA = 0.5

_METADATA = None


def _person_metadata():
    """Detectron2 metadata with the person keypoints' names and limb colors, for the skeletons."""
    global _METADATA
    if _METADATA is None:
        from detectron2.data.catalog import Metadata

        from ..data.builtin import person_metadata

        _METADATA = Metadata(name="__pose2seg_persons")
        _METADATA.set(**person_metadata())
    return _METADATA


def score_labels(scores):
    """Labels of persons by their scores, as Detectron2's demo writes them ("person 87%")."""
    return [f"person {100 * float(s):.0f}%" for s in scores]


def draw_persons(image_rgb, colors, masks=None, keypoints=None, labels=None, label_boxes=None, alpha=MASK_ALPHA):
    """
    Args:
        image_rgb (ndarray): (H, W, 3) uint8 RGB.
        colors (list): N RGB colors in [0, 1], the persons' (see :mod:`.colors`).
        masks (Tensor or ndarray): (N, H, W) bool, drawn larger first; None: no masks.
        keypoints (Tensor or ndarray): (N, K, 3) of (x, y, v) in the image's continuous
            coordinates (pixel (i, j) spans [i, i + 1]), those with v > 0.05 drawn; None: no
            skeletons.
        labels (list[str]): N texts, each drawn at the top left corner of its ``label_boxes``
            row ((N, 4) of (x0, y0, x1, y1) in the same coordinates; the boxes are not drawn);
            None: no labels.
        alpha (float): opacity of the masks' colors.

    Returns:
        ndarray: (H, W, 3) uint8 RGB, the image with the persons drawn.
    """
    from detectron2.utils.visualizer import Visualizer

    n = len(colors)
    if masks is not None:
        masks = np.asarray(masks, dtype=bool)
    if keypoints is not None:
        keypoints = np.asarray(keypoints, dtype=np.float32)
    for name, value in (("masks", masks), ("keypoints", keypoints), ("labels", labels), ("label_boxes", label_boxes)):
        if value is not None and len(value) != n:
            raise ValueError(f"{n} colors but {len(value)} {name}")
    if labels is not None and label_boxes is None:
        raise ValueError("labels need label_boxes")
    visualizer = Visualizer(image_rgb, _person_metadata(), scale=1.0)
    if n and (masks is not None or keypoints is not None):
        visualizer.overlay_instances(masks=None if masks is None else list(masks), keypoints=keypoints,
                                     assigned_colors=list(colors), alpha=alpha)  # fmt: skip
    if n and labels is not None:
        h, w = image_rgb.shape[:2]
        font_size = 0.6 * max(math.sqrt(h * w) // 90, 10)  # Detectron2's default size, as for small persons
        for text, box, color in zip(labels, np.asarray(label_boxes, dtype=np.float64), colors):
            lighter = tuple(c + 0.5 * (1 - c) for c in color)
            visualizer.draw_text(
                text, (box[0], box[1]), color=lighter, horizontal_alignment="left", font_size=font_size
            )
    drawn = visualizer.output.get_image()
    if drawn.shape[:2] != image_rgb.shape[:2]:
        drawn = cv2.resize(drawn, (image_rgb.shape[1], image_rgb.shape[0]))
    return drawn
