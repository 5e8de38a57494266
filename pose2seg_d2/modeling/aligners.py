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

from ..pose import PoseTemplates, keypoint_box_roi_matrices
from ..utils import resolve_path

__all__ = [
    "POSE2SEG_ALIGNER_REGISTRY",
    "PoseAffineAligner",
    "KeypointBoxAligner",
    "build_aligner",
]

POSE2SEG_ALIGNER_REGISTRY = Registry("POSE2SEG_ALIGNER")
POSE2SEG_ALIGNER_REGISTRY.__doc__ = """
Registry for Pose2Seg aligners: modules that map (keypoints, feature sizes) to per-person
feature -> window matrices. Chosen by cfg.MODEL.POSE2SEG.ALIGNER.
"""


def load_templates(path, mirror="swap_rows"):
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
    """Affine-Align (docs/method.md §2.3): the best-scoring pose template's similarity transform."""

    @configurable
    def __init__(self, *, templates, window_size, hard_rule=True, fallback="whole_map", fallback_enlarge=1.25):
        """
        Args:
            templates (PoseTemplates): the templates to fit.
            window_size (tuple[int, int]): (h, w).
            hard_rule (bool), fallback (str), fallback_enlarge (float): as
                :meth:`PoseTemplates.fit`.
        """
        super().__init__()
        self.templates = templates
        self.window_size = tuple(window_size)
        self.hard_rule = hard_rule
        self.fallback = fallback
        self.fallback_enlarge = fallback_enlarge

    @classmethod
    def from_config(cls, cfg):
        p = cfg.MODEL.POSE2SEG
        return {
            "templates": load_templates(p.TEMPLATES_FILE, p.TEMPLATE_MIRROR),
            "window_size": tuple(p.WINDOW_SIZE),
            "hard_rule": p.HARD_RULE,
            "fallback": p.FALLBACK,
            "fallback_enlarge": p.FALLBACK_BOX_ENLARGE,
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
            keypoints, feature_sizes, self.window_size, self.hard_rule, self.fallback, self.fallback_enlarge
        )
        return fit.matrices


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
