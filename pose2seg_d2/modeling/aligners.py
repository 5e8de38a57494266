"""
Aligners: choose, for each person, the affine map from the feature map into its window.

An aligner is called with keypoints in feature-map pixel coordinates (pixel centers at
integers) and the valid (unpadded) feature-map size of each person's image, and returns
(N, 3, 3) float32 matrices mapping feature-map pixels to window pixels.
"""
import os

import torch
from detectron2.config import configurable
from detectron2.utils.registry import Registry
from torch import nn

from ..pose import PoseTemplates, labeled_keypoint_box, per_person_sizes
from ..utils import resolve_path

__all__ = [
    "POSE2SEG_ALIGNER_REGISTRY",
    "PoseAffineAligner",
    "KeypointBoxAligner",
    "keypoint_box_roi_matrices",
    "build_aligner",
]

POSE2SEG_ALIGNER_REGISTRY = Registry("POSE2SEG_ALIGNER")
POSE2SEG_ALIGNER_REGISTRY.__doc__ = """
Registry for Pose2Seg aligners: modules that map (keypoints, feature sizes) to per-person
feature -> window matrices. Chosen by cfg.MODEL.POSE2SEG.ALIGNER.
"""


def load_templates(path, mirror="release"):
    path = resolve_path(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Pose templates file {path} does not exist (cfg.MODEL.POSE2SEG.TEMPLATES_FILE). "
            "Make one with tools/cluster_templates.py (see datasets/README.md), or leave the "
            "option empty for the packaged default."
        )
    return PoseTemplates.load(path, mirror=mirror)


@POSE2SEG_ALIGNER_REGISTRY.register()
class PoseAffineAligner(nn.Module):
    """Affine-Align (SPEC §2.3): the best-scoring pose template's similarity transform."""

    @configurable
    def __init__(self, *, templates, window_size, hard_rule=True, fallback="release"):
        super().__init__()
        self.templates = templates
        self.window_size = tuple(window_size)
        self.hard_rule = hard_rule
        self.fallback = fallback

    @classmethod
    def from_config(cls, cfg):
        p = cfg.MODEL.POSE2SEG
        return {
            "templates": load_templates(p.TEMPLATES_FILE, p.TEMPLATE_MIRROR),
            "window_size": tuple(p.WINDOW_SIZE),
            "hard_rule": p.HARD_RULE,
            "fallback": p.FALLBACK,
        }

    def forward(self, keypoints, feature_sizes):
        """
        Args:
            keypoints (Tensor): (N, 17, 3) in feature-map pixel coordinates.
            feature_sizes (Tensor): (N, 2) valid feature-map (height, width) per person.

        Returns:
            Tensor (N, 3, 3) float32: feature-map pixels -> window pixels.
        """
        fit = self.templates.fit(
            keypoints, feature_sizes, self.window_size, hard=self.hard_rule, fallback=self.fallback
        )
        return fit.matrices


def keypoint_box_roi_matrices(keypoints, feature_sizes, window_size, enlarge=1.2, min_side_fraction=0.125):
    """
    ROIAlign over each person's keypoints' box as an affine map (the paper's box-based ablation).

    The box (continuous coordinates: feature pixel i spans [i, i + 1]) holds the labeled
    keypoints, is grown by ``enlarge`` about its center and has each side at least
    ``min_side_fraction`` of the longer feature-map side; persons with no labeled keypoint get the
    whole map. Window pixel u samples the box at ``x1 + (u + 0.5) * box_w / w``, which is
    torchvision's ``roi_align(..., aligned=True, sampling_ratio=1)``; the box is stretched to
    the window (aspect not kept), as ROIAlign does.

    Args:
        keypoints (Tensor): (N, K, 3) in feature-map pixel coordinates (centers at integers).
        feature_sizes (Tensor): (N, 2) valid feature-map (height, width).
        window_size (tuple[int, int]): (h, w).

    Returns:
        Tensor (N, 3, 3) float64: feature-map pixels -> window pixels.
    """
    num = keypoints.shape[0]
    sizes = per_person_sizes(feature_sizes, num, keypoints.device)
    low, high, any_labeled = labeled_keypoint_box(keypoints)
    low, high, any_labeled = low + 0.5, high + 0.5, any_labeled[:, None]  # continuous coordinates
    whole = torch.stack([sizes[:, 1], sizes[:, 0]], dim=1)  # (w, h) of the map
    center = torch.where(any_labeled, (low + high) / 2, whole / 2)
    min_side = min_side_fraction * sizes.amax(dim=1, keepdim=True)
    side = torch.where(any_labeled, torch.maximum((high - low) * enlarge, min_side), whole)
    x1y1 = center - side / 2
    h, w = window_size
    scale = torch.stack([w / side[:, 0], h / side[:, 1]], dim=1)
    matrices = torch.zeros(num, 3, 3, dtype=torch.float64, device=keypoints.device)
    matrices[:, 0, 0], matrices[:, 1, 1], matrices[:, 2, 2] = scale[:, 0], scale[:, 1], 1.0
    # u = (x + 0.5 - x1) * scale - 0.5
    matrices[:, :2, 2] = (0.5 - x1y1) * scale - 0.5
    return matrices


@POSE2SEG_ALIGNER_REGISTRY.register()
class KeypointBoxAligner(nn.Module):
    """Box-based alignment (ROIAlign over the keypoints' box), for the paper's ablation."""

    @configurable
    def __init__(self, *, window_size, enlarge=1.2):
        super().__init__()
        self.window_size = tuple(window_size)
        self.enlarge = enlarge

    @classmethod
    def from_config(cls, cfg):
        p = cfg.MODEL.POSE2SEG
        return {"window_size": tuple(p.WINDOW_SIZE), "enlarge": p.BOX_ENLARGE}

    def forward(self, keypoints, feature_sizes):
        """Same contract as :meth:`PoseAffineAligner.forward`."""
        return keypoint_box_roi_matrices(keypoints, feature_sizes, self.window_size, self.enlarge).float()


def build_aligner(cfg):
    return POSE2SEG_ALIGNER_REGISTRY.get(cfg.MODEL.POSE2SEG.ALIGNER)(cfg)
