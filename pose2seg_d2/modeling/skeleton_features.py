"""Skeleton feature makers: extra input channels rendered from the window keypoints."""
import torch
from detectron2.config import configurable
from detectron2.utils.registry import Registry
from torch import nn

from ..pose import NUM_SKELETON_CHANNELS, skeleton_features

__all__ = ["POSE2SEG_SKELETON_REGISTRY", "SkeletonFeatures", "NoSkeletonFeatures", "build_skeleton_features"]

POSE2SEG_SKELETON_REGISTRY = Registry("POSE2SEG_SKELETON")
POSE2SEG_SKELETON_REGISTRY.__doc__ = """
Registry for skeleton feature makers: modules with ``num_channels`` that turn (N, 17, 3)
window keypoints into (N, num_channels, h, w). Chosen by cfg.MODEL.POSE2SEG.SKELETON.
"""


@POSE2SEG_SKELETON_REGISTRY.register()
class SkeletonFeatures(nn.Module):
    """17 part confidence maps + 38 part affinity field channels (docs/method.md §2.4)."""

    num_channels = NUM_SKELETON_CHANNELS

    @configurable
    def __init__(self, *, sigma=3.0, paf_width=1.0, signed_occluded=True):
        super().__init__()
        self.sigma, self.paf_width, self.signed_occluded = sigma, paf_width, signed_occluded

    @classmethod
    def from_config(cls, cfg):
        p = cfg.MODEL.POSE2SEG
        return {
            "sigma": p.SKELETON_SIGMA,
            "paf_width": p.SKELETON_PAF_WIDTH,
            "signed_occluded": p.SKELETON_SIGNED_OCCLUDED,
        }

    def forward(self, window_keypoints, window_size):
        return skeleton_features(
            window_keypoints, window_size, self.sigma, self.paf_width, self.signed_occluded
        )


@POSE2SEG_SKELETON_REGISTRY.register()
class NoSkeletonFeatures(nn.Module):
    """No skeleton channels: the ablation without skeleton features."""

    num_channels = 0

    def __init__(self, cfg=None):
        super().__init__()

    def forward(self, window_keypoints, window_size):
        h, w = window_size
        return window_keypoints.new_zeros((window_keypoints.shape[0], 0, h, w), dtype=torch.float32)


def build_skeleton_features(cfg):
    return POSE2SEG_SKELETON_REGISTRY.get(cfg.MODEL.POSE2SEG.SKELETON)(cfg)
